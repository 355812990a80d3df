package clientmanager

import (
	"cmp"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/session"
)

// Changes queued while a publication is in progress are published
// together, in one copy of the role's view and of the node map, and no
// writer returns before its change is visible.
func TestRegistryBatchesChangesQueuedDuringAPublication(t *testing.T) {
	t.Parallel()
	m, bal := newRegistryManager(t)
	const k = 64
	clients := make([]*Client, k)
	for i := range clients {
		clients[i] = registryNode(m, bal, int64(k-i)) // in reverse ServerID order
	}
	m.reg.pub.Lock() // a publication in progress
	published := m.reg.published
	var returned atomic.Int32
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			m.reg.setState(c, NodeOnline, nil)
			returned.Add(1)
		})
	}
	require.Eventually(t, func() bool {
		m.reg.mu.Lock()
		defer m.reg.mu.Unlock()
		return m.reg.pending != nil && len(m.reg.pending.changes) == k
	}, testTimeout, time.Millisecond, "every change queued")
	require.Zero(t, returned.Load(), "a writer returned before its change was published")
	require.Empty(t, m.GetClients(testRole))
	m.reg.pub.Unlock()
	wg.Wait()

	m.reg.pub.Lock()
	require.Equal(t, published+1, m.reg.published, "one publication for %d changes", k)
	m.reg.pub.Unlock()
	got := m.GetClients(testRole)
	require.Len(t, got, k)
	for i, c := range got {
		require.Equal(t, int64(i+1), c.NodeID(), "ordered by ServerID")
		require.True(t, m.IsOnline(c.NodeID()))
	}
}

// The published snapshot always equals the registry's state, whatever the
// interleaving of changes from many goroutines: nodes joining, leaving,
// flapping, stopping and being replaced, in two roles that share
// ServerIDs.
func TestRegistrySnapshotMatchesStateUnderConcurrentChanges(t *testing.T) {
	t.Parallel()
	m, err := newManager(nil, DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	roles := []string{"datanode", testRole}
	bals := map[string]balancer.Balancer{}
	for _, role := range roles {
		bals[role] = balancer.NewRoundRobin()
		m.reg.addRole(role, bals[role], m.newRoleShared(role))
	}
	const workers, ids, steps = 8, 40, 400
	var all sync.Map // every Client made: *Client → struct{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			role := roles[w%len(roles)]
			cur := map[int64]*Client{}
			// Worker w owns the ServerIDs ≡ w/2 (mod workers/2) of its role.
			for range steps {
				id := int64(w/len(roles) + 1 + rng.IntN(ids/(workers/2))*(workers/2))
				c := cur[id]
				switch op := rng.IntN(6); {
				case c == nil || op == 0: // a new process replaces the old
					if c != nil {
						m.reg.remove(c)
					}
					c = m.newNodeClient(session.Session{ServerID: id, ServerName: role, Address: "192.0.2.1:9"}, bals[role], nil, m.log)
					all.Store(c, struct{}{})
					m.reg.addMember(c)
					cur[id] = c
				case op == 1:
					m.reg.remove(c)
					delete(cur, id)
				case op == 2:
					m.reg.setSession(c, session.Session{ServerID: id, ServerName: role, Address: "192.0.2.1:9", Stopping: rng.IntN(2) == 0})
				case op == 3:
					m.reg.setState(c, NodeSuspect, nil)
				default:
					m.reg.setState(c, NodeOnline, nil)
				}
			}
		})
	}
	wg.Wait()

	want := map[string][]*Client{}
	avail := map[int64][]*Client{}
	all.Range(func(k, _ any) bool {
		c := k.(*Client)
		if c.node.available {
			want[c.role] = append(want[c.role], c)
			avail[c.id] = append(avail[c.id], c)
		}
		return true
	})
	s := m.reg.load()
	for _, role := range roles {
		slices.SortFunc(want[role], func(a, b *Client) int { return cmp.Compare(a.id, b.id) })
		got := s.roles[role]
		require.Equal(t, want[role], got.clients, "role %s", role)
		require.Len(t, got.ids, len(got.clients))
		for i, c := range got.clients {
			require.Equal(t, c.id, got.ids[i])
		}
	}
	require.Len(t, s.nodes, len(avail))
	for id, cs := range avail {
		require.Contains(t, cs, s.nodes[id], "node %d points at an available Client", id)
	}
}

// A storm of changes — every node of a role coming online at once, as
// after New with an instant dialer — costs memory in proportion to the
// number of nodes, not to its square: the changes that arrive while a
// publication is in progress share the next one.
func TestRegistryStormAllocatesLinearly(t *testing.T) {
	m, bal := newRegistryManager(t)
	const n = 2000
	clients := make([]*Client, n)
	for i := range clients {
		clients[i] = registryNode(m, bal, int64(i+1))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			<-start
			m.reg.setState(c, NodeOnline, nil)
		})
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	close(start)
	wg.Wait()
	runtime.ReadMemStats(&after)
	require.Len(t, m.GetClients(testRole), n)
	perNode := (after.TotalAlloc - before.TotalAlloc) / n
	m.reg.pub.Lock()
	t.Logf("%d nodes online: %d publications, %d bytes allocated per node", n, m.reg.published, perNode)
	m.reg.pub.Unlock()
	require.Less(t, perNode, uint64(4<<10), "bytes allocated per node")
}
