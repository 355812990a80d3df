package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/coordkit/clientmanager/clientmanager/breaker"
)

// TestBreakerIsolatesAFailingReplica runs three real gRPC servers; one
// starts failing, its breaker opens and the others serve every call; it
// heals, and its breaker goes half-open and closes again.
func TestBreakerIsolatesAFailingReplica(t *testing.T) {
	t.Parallel()
	const breakDuration = 150 * time.Millisecond
	e := newEnv(t, func(c *Config) {
		c.Breaker.ConsecutiveFailures = 3
		c.Breaker.BreakDuration = breakDuration
		c.Breaker.MaxBreakDuration = breakDuration
		c.Breaker.BreakJitter = 0
		c.Breaker.HalfOpenProbes = 2
		c.BreakerRefreshInterval = 10 * time.Millisecond
	})
	srvs := e.replicas(3)
	call := func() error { return e.m.Invoke(context.Background(), testRole, callUnary, Idempotent()) }
	for range 30 {
		require.NoError(t, call())
	}
	require.Positive(t, srvs[0].svc.calls.Load(), "node 1 served while healthy")

	// Node 1 fails: its breaker opens, and callers see nothing of it.
	srvs[0].svc.code.Store(uint32(codes.Unavailable))
	failures := 0
	require.Eventually(t, func() bool {
		if call() != nil {
			failures++
		}
		return statusOf(t, e.m, 1).Breaker == breaker.StateOpen
	}, testTimeout, time.Millisecond, "node 1's breaker opens")
	require.Zero(t, failures, "retries went to the other replicas")
	before := srvs[0].svc.calls.Load()
	for range 100 {
		require.NoError(t, call())
	}
	// While open, node 1 gets at most the probes of its half-open periods
	// (two per break of 150 ms).
	require.Less(t, srvs[0].svc.calls.Load()-before, int64(20))
	require.Equal(t, Degraded, e.m.RoleHealth(testRole).Health)
	st := statusOf(t, e.m, 1)
	require.Contains(t, st.LastFailureError, "scripted failure")
	require.GreaterOrEqual(t, st.ConsecutiveFailures, 3)

	// It heals: the next half-open period's probes succeed and close it.
	srvs[0].svc.code.Store(uint32(codes.OK))
	require.Eventually(t, func() bool {
		require.NoError(t, call())
		return statusOf(t, e.m, 1).Breaker == breaker.StateClosed
	}, testTimeout, 5*time.Millisecond, "node 1's breaker closes")
	m := e.m.metrics.breakerTransitions
	require.GreaterOrEqual(t, metricValue(t, m.WithLabelValues(testRole, "open")), 1.0)
	require.GreaterOrEqual(t, metricValue(t, m.WithLabelValues(testRole, "half-open")), 1.0)
	require.Equal(t, 1.0, metricValue(t, m.WithLabelValues(testRole, "closed")))
	require.Equal(t, Healthy, e.m.RoleHealth(testRole).Health)

	before = srvs[0].svc.calls.Load()
	for range 60 {
		require.NoError(t, call())
	}
	require.Greater(t, srvs[0].svc.calls.Load()-before, int64(5), "node 1 takes its share again")
}
