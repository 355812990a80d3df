package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/clientmanager/bulkhead"
)

func statusOf(t *testing.T, m *Manager, id int64) NodeStatus {
	t.Helper()
	for _, s := range m.Status() {
		if s.NodeID == id {
			return s
		}
	}
	t.Fatalf("node %d not in Status", id)
	return NodeStatus{}
}

func TestStatusAndRoleHealthShowBreakerAndBulkhead(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	const latency = 40 * time.Millisecond
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	m, _ := unitManager(t, clock, 2, func(c *Config) {
		c.CallAttempts = 1 // a retry on the same node would wait on the fake clock
		c.Bulkhead = bulkhead.Config{MaxConcurrent: 1, MaxQueue: 1}
		c.Breaker.BreakDuration = time.Minute
		c.Breaker.MaxBreakDuration = time.Minute
	}, func(_ context.Context, id int64) error {
		if id == 1 {
			clock.Advance(latency) // the call takes 40 ms on the manager's clock
			return status.Error(codes.Unavailable, "node 1 is down")
		}
		entered <- struct{}{}
		<-release
		return nil
	})
	v := m.RoleHealth(testRole)
	require.Equal(t, Healthy, v.Health)
	require.Empty(t, v.Reasons)

	// Node 1 fails until its breaker opens.
	failures := m.cfg.Breaker.ConsecutiveFailures
	for range failures {
		require.Equal(t, codes.Unavailable, status.Code(m.InvokeNode(context.Background(), 1, callUnary)))
	}
	openedAt := clock.Now()
	// Node 2 runs one call and queues another.
	done := make(chan error, 2)
	go func() { done <- m.InvokeNode(context.Background(), 2, callUnary) }()
	<-entered
	go func() { done <- m.InvokeNode(context.Background(), 2, callUnary) }()
	require.Eventually(t, func() bool { return statusOf(t, m, 2).Queued == 1 }, testTimeout, time.Millisecond)

	s1, s2 := statusOf(t, m, 1), statusOf(t, m, 2)
	require.Equal(t, breaker.StateOpen, s1.Breaker)
	require.WithinDuration(t, openedAt, s1.BreakerSince, 0)
	require.Equal(t, failures, s1.ConsecutiveFailures)
	require.Equal(t, latency, s1.LatencyEWMA, "every attempt took 40 ms")
	require.WithinDuration(t, openedAt, s1.LastFailure, 0)
	require.Contains(t, s1.LastFailureError, "node 1 is down")
	require.Equal(t, NodeOnline, s1.State)
	require.Equal(t, breaker.StateClosed, s2.Breaker)
	require.True(t, s2.BreakerSince.IsZero())
	require.Equal(t, 1, s2.BulkheadInFlight)
	require.Equal(t, 1, s2.Queued)
	require.Equal(t, int64(1), s2.InFlight)
	require.Empty(t, s2.LastFailureError)

	v = m.RoleHealth(testRole)
	require.Equal(t, Degraded, v.Health)
	require.Equal(t, []string{"node 1: circuit breaker open", "node 2: bulkhead queue 1 of 1"}, v.Reasons)

	clock.Advance(m.cfg.UnhealthyAfter + time.Second)
	v = m.RoleHealth(testRole)
	require.Equal(t, Unhealthy, v.Health)
	require.Contains(t, v.Reasons[0], "node 1: circuit breaker not closed for 31s")

	close(release)
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	require.Zero(t, statusOf(t, m, 2).Queued)
}

func TestRoleHealthWithoutNodes(t *testing.T) {
	t.Parallel()
	m, clients := unitManager(t, clockwork.NewFakeClock(), 1, nil, ok)
	v := m.RoleHealth("datanode")
	require.Equal(t, HealthVerdict{Role: "datanode", Health: Unhealthy, Reasons: []string{"not a dependency"}}, v)

	m.reg.setState(clients[0], NodeSuspect, nil)
	v = m.RoleHealth(testRole)
	require.Equal(t, Unhealthy, v.Health)
	require.Equal(t, []string{"no node available"}, v.Reasons)

	require.NoError(t, m.Close())
	require.Equal(t, []string{"manager closed"}, m.RoleHealth(testRole).Reasons)
}

func TestHealthStrings(t *testing.T) {
	for h, want := range map[Health]string{Healthy: "healthy", Degraded: "degraded", Unhealthy: "unhealthy", Health(7): "Health(7)"} {
		require.Equal(t, want, h.String())
	}
}
