package clientmanager

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/session"
)

// unitManager returns a manager without etcd whose role testRole has n
// online nodes (IDs 1..n) on fake connections answering with answer.
// Routing, admission and retries are the real ones; no goroutine runs.
func unitManager(t testing.TB, clock clockwork.Clock, n int, edit func(*Config), answer func(ctx context.Context, id int64) error) (*Manager, []*Client) {
	t.Helper()
	cfg := DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	m, err := newManager(nil, cfg, WithClock(clock))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	bal, err := balancer.New(cfg.Balancer, balancer.WithClock(clock))
	require.NoError(t, err)
	shared := m.newRoleShared(testRole)
	m.reg.addRole(testRole, bal, shared)
	clients := make([]*Client, n)
	for i := range clients {
		id := int64(i + 1)
		c := m.newNodeClient(session.Session{ServerID: id, ServerName: testRole, Address: "192.0.2.1:9"}, bal, shared, m.log)
		fc := newFakeConn()
		fc.invoke = func(ctx context.Context, _ string) error { return answer(ctx, id) }
		c.setConn(fc)
		m.reg.addMember(c)
		m.reg.setState(c, NodeOnline, nil)
		clients[i] = c
	}
	require.Len(t, m.GetClients(testRole), n)
	return m, clients
}

// forceOpen records enough failures on c's breaker to open it.
func forceOpen(t testing.TB, c *Client) {
	t.Helper()
	for c.brk.State() == breaker.StateClosed {
		tok, err := c.brk.Allow()
		require.NoError(t, err)
		c.brk.Record(tok, breaker.Failure)
	}
	require.Equal(t, breaker.StateOpen, c.brk.State())
}

// nodeSet records which nodes calls reached.
type nodeSet struct {
	mu   sync.Mutex
	hits map[int64]int
}

func (s *nodeSet) add(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hits == nil {
		s.hits = map[int64]int{}
	}
	s.hits[id]++
}

func (s *nodeSet) ids() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for id := range s.hits {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (s *nodeSet) count(id int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[id]
}

// noBreaker is a breaker configuration that never opens in a test.
func noBreaker(c *Config) {
	c.Breaker.ConsecutiveFailures = 1 << 30
	c.Breaker.FailureRatio = 0
}
