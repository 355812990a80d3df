package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/session"
)

func recv(t *testing.T, ch <-chan ClientEvent) ClientEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "channel closed")
		return ev
	case <-time.After(testTimeout):
		t.Fatal("no event")
		return ClientEvent{}
	}
}

func requireClosed(t *testing.T, ch <-chan ClientEvent) {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("channel not closed")
		}
	}
}

func TestWatchClientsSnapshotThenEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srvs := e.replicas(2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := e.m.WatchClients(ctx, testRole)
	for _, id := range []int64{1, 2} {
		ev := recv(t, watch)
		require.Equal(t, ClientOnline, ev.Type)
		require.Equal(t, id, ev.Client.NodeID(), "the snapshot comes first, by ServerID")
	}

	s3 := e.node(3, srvs[0].addr)
	ev := recv(t, watch)
	require.Equal(t, ClientOnline, ev.Type)
	require.Equal(t, int64(3), ev.Client.NodeID())

	e.ss.del(s3)
	ev = recv(t, watch)
	require.Equal(t, ClientOffline, ev.Type)
	require.Equal(t, int64(3), ev.Client.NodeID())

	cancel()
	requireClosed(t, watch)
}

func TestWatchClientsClosedOnClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.replicas(1)
	watch := e.m.WatchClients(context.Background(), testRole)
	require.Equal(t, int64(1), recv(t, watch).Client.NodeID())
	require.NoError(t, e.m.Close())
	requireClosed(t, watch)
	requireClosed(t, e.m.WatchClients(context.Background(), testRole))
}

// registryNode puts a node straight into m's registry, with no connector.
func registryNode(m *Manager, bal balancer.Balancer, id int64) *Client {
	m.reg.mu.Lock()
	shared := m.reg.roles[testRole].shared
	m.reg.mu.Unlock()
	c := m.newNodeClient(session.Session{ServerID: id, ServerName: testRole, Address: "192.0.2.1:9"}, bal, shared, m.log)
	c.setConn(newFakeConn())
	m.reg.addMember(c)
	return c
}

func newRegistryManager(t testing.TB) (*Manager, balancer.Balancer) {
	t.Helper()
	m, err := newManager(nil, DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	bal, err := balancer.New(balancer.DefaultConfig())
	require.NoError(t, err)
	m.reg.addRole(testRole, bal, m.newRoleShared(testRole))
	return m, bal
}

func TestWatchClientsCoalescesForSlowReader(t *testing.T) {
	t.Parallel()
	m, bal := newRegistryManager(t)
	c1, c2, c3 := registryNode(m, bal, 1), registryNode(m, bal, 2), registryNode(m, bal, 3)
	m.reg.setState(c1, NodeOnline, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := m.WatchClients(ctx, testRole)
	require.Equal(t, ClientEvent{Type: ClientOnline, Client: c1}, recv(t, watch))

	// 201 changes while the reader does not read.
	for i := 0; i < 100; i++ {
		m.reg.setState(c1, NodeSuspect, nil)
		m.reg.setState(c1, NodeOnline, nil)
	}
	m.reg.setState(c1, NodeSuspect, nil)
	m.reg.setState(c2, NodeOnline, nil)
	m.reg.setState(c2, NodeSuspect, nil)
	m.reg.setState(c3, NodeOnline, nil)

	online := map[int64]*Client{1: c1}
	var got []ClientEvent
	for len(online) != 1 || online[3] != c3 {
		ev := recv(t, watch)
		got = append(got, ev)
		if ev.Type == ClientOnline {
			online[ev.Client.NodeID()] = ev.Client
		} else {
			require.Same(t, online[ev.Client.NodeID()], ev.Client, "offline only for what it was told is online")
			delete(online, ev.Client.NodeID())
		}
	}
	require.LessOrEqual(t, len(got), 5, "coalesced per node: %v", got)
	require.Equal(t, ClientEvent{Type: ClientOnline, Client: c3}, got[len(got)-1], "per-node latest state, in order")
	cancel()
	requireClosed(t, watch)
}

func TestWatchSubOrderAndNeeded(t *testing.T) {
	a := &Client{id: 1}
	b := &Client{id: 2}
	a2 := &Client{id: 1}
	s := newWatchSub()
	s.push(ClientEvent{Type: ClientOnline, Client: a})
	s.push(ClientEvent{Type: ClientOnline, Client: b})
	s.push(ClientEvent{Type: ClientOffline, Client: a})
	s.push(ClientEvent{Type: ClientOnline, Client: a2})
	batch := s.q.Take(nil)
	require.Equal(t, []ClientEvent{{Type: ClientOnline, Client: b}, {Type: ClientOnline, Client: a2}}, batch,
		"latest state per node, in the order of the latest change")
	require.Empty(t, s.q.Take(batch))

	sent := map[int64]*Client{}
	require.True(t, needed(ClientEvent{Type: ClientOnline, Client: a}, sent))
	require.False(t, needed(ClientEvent{Type: ClientOnline, Client: a}, sent), "a duplicate is dropped")
	require.True(t, needed(ClientEvent{Type: ClientOnline, Client: a2}, sent), "a new incarnation is news")
	require.False(t, needed(ClientEvent{Type: ClientOffline, Client: a}, sent), "offline of a replaced incarnation")
	require.False(t, needed(ClientEvent{Type: ClientOffline, Client: b}, sent), "offline of a node never online")
	require.True(t, needed(ClientEvent{Type: ClientOffline, Client: a2}, sent))
}
