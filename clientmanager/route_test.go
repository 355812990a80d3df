package clientmanager

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
)

func ok(context.Context, int64) error { return nil }

func TestPlanRouteEjectionCap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nodes   int
		open    []int64 // forced open in this order, 1 ms apart
		percent int
		panic   bool
		ejected []int64 // nodes left out
		bypass  []int64 // nodes routed to past their breaker
		err     error
	}{
		{name: "none open", nodes: 4, percent: 50},
		{name: "one of four", nodes: 4, open: []int64{2}, percent: 50, ejected: []int64{2}},
		{name: "two of four", nodes: 4, open: []int64{2, 3}, percent: 50, ejected: []int64{2, 3}},
		{name: "three of four: the earliest comes back", nodes: 4, open: []int64{1, 2, 3}, percent: 50,
			ejected: []int64{2, 3}, bypass: []int64{1}},
		{name: "opening order decides", nodes: 4, open: []int64{3, 1, 2}, percent: 50,
			ejected: []int64{1, 2}, bypass: []int64{3}},
		{name: "two of three", nodes: 3, open: []int64{1, 2}, percent: 50, ejected: []int64{2}, bypass: []int64{1}},
		{name: "one of two", nodes: 2, open: []int64{1}, percent: 50, ejected: []int64{1}},
		{name: "100 percent keeps one", nodes: 4, open: []int64{1, 2, 3}, percent: 100, ejected: []int64{1, 2, 3}},
		{name: "zero percent ejects nothing", nodes: 4, open: []int64{1, 2, 3}, percent: 0, bypass: []int64{1, 2, 3}},
		{name: "all open", nodes: 3, open: []int64{1, 2, 3}, percent: 50, err: ErrAllNodesUnhealthy},
		{name: "single node open", nodes: 1, open: []int64{1}, percent: 100, err: ErrAllNodesUnhealthy},
		{name: "all open in panic", nodes: 3, open: []int64{1, 2, 3}, percent: 50, panic: true, bypass: []int64{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clockwork.NewFakeClock()
			m, clients := unitManager(t, clock, tc.nodes, func(c *Config) {
				c.MaxEjectionPercent = tc.percent
				c.PanicMode = tc.panic
			}, ok)
			for _, id := range tc.open {
				forceOpen(t, clients[id-1])
				clock.Advance(time.Millisecond)
			}
			v := m.reg.load().roles[testRole]
			plan, err := m.planRoute(v)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			var ejected, bypass []int64
			for _, id := range v.ids {
				switch plan.verdict(v, id) {
				case routeEjected:
					ejected = append(ejected, id)
				case routeBypass:
					bypass = append(bypass, id)
				}
			}
			require.Equal(t, tc.ejected, ejected, "ejected")
			require.Equal(t, tc.bypass, bypass, "routed past the cap")
			if len(tc.open) == 0 {
				require.Nil(t, plan, "no breaker read while all are closed")
			}
		})
	}
}

func TestInvokeEjectionCapHolds(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	var hits nodeSet
	m, clients := unitManager(t, clock, 4, nil, func(_ context.Context, id int64) error {
		hits.add(id)
		return nil
	})
	for _, c := range clients[:3] { // nodes 1, 2, 3 open, 1 first
		forceOpen(t, c)
		clock.Advance(time.Millisecond)
	}
	for range 200 {
		require.NoError(t, m.Invoke(context.Background(), testRole, callUnary))
	}
	require.Equal(t, []int64{1, 4}, hits.ids(), "only 2 of 4 ejected: the earliest opened node takes calls beside the healthy one")
	require.Greater(t, hits.count(1), 20)
	require.Greater(t, hits.count(4), 20)
	require.Equal(t, breaker.StateOpen, clients[0].brk.State(), "calls past the cap are not recorded")
}

func TestInvokeAllUnhealthyFailsFast(t *testing.T) {
	// Not parallel: it times calls.
	called := false
	m, clients := unitManager(t, clockwork.NewFakeClock(), 3, nil, func(context.Context, int64) error {
		called = true
		return nil
	})
	for _, c := range clients {
		forceOpen(t, c)
	}
	// How fast it fails is measured by the benchmarks; here, that it fails
	// without calling any node.
	var err error
	for range 200 {
		err = m.Invoke(context.Background(), testRole, callUnary)
	}
	require.False(t, called)
	require.ErrorIs(t, err, ErrAllNodesUnhealthy)
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Contains(t, err.Error(), testRole)
	require.Equal(t, 200.0, metricValue(t, m.metrics.unhealthyFails.WithLabelValues(testRole)))
	require.Zero(t, metricValue(t, m.metrics.attempts.WithLabelValues(testRole)))

	err = m.InvokeNode(context.Background(), 2, callUnary)
	require.ErrorIs(t, err, ErrCircuitOpen)
	require.Equal(t, codes.Unavailable, status.Code(err))
	var ne *NodeError
	require.ErrorAs(t, err, &ne)
	require.Equal(t, int64(2), ne.NodeID)
}

func TestInvokePanicModeRoutesToAll(t *testing.T) {
	t.Parallel()
	var hits nodeSet
	m, clients := unitManager(t, clockwork.NewFakeClock(), 3, func(c *Config) { c.PanicMode = true },
		func(_ context.Context, id int64) error {
			hits.add(id)
			return nil
		})
	for _, c := range clients {
		forceOpen(t, c)
	}
	for range 300 {
		require.NoError(t, m.Invoke(context.Background(), testRole, callUnary))
	}
	require.Equal(t, []int64{1, 2, 3}, hits.ids())
	for id := int64(1); id <= 3; id++ {
		require.Greater(t, hits.count(id), 30, "node %d", id)
	}
}

func TestInvokeHalfOpenAdmitsOnlyProbes(t *testing.T) {
	t.Parallel()
	const probes = 2
	clock := clockwork.NewFakeClock()
	entered := make(chan struct{}, 64)
	release := make(chan struct{})
	var hits nodeSet
	m, clients := unitManager(t, clock, 2, func(c *Config) {
		c.Balancer.Policy = balancer.PolicyRoundRobin // node 1 comes up every other pick
		c.Breaker.HalfOpenProbes = probes
		c.Breaker.BreakJitter = 0
	}, func(_ context.Context, id int64) error {
		hits.add(id)
		if id == 1 {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	c1 := clients[0]
	forceOpen(t, c1)
	clock.Advance(m.cfg.Breaker.BreakDuration)
	// The pick itself turns the breaker half-open: nothing else ran.

	const calls = 20
	done := make(chan error, calls)
	held := 0
	for i := range calls {
		// One call at a time: it is either held on node 1 as a probe or
		// answered by node 2.
		go func() { done <- m.Invoke(context.Background(), testRole, callUnary) }()
		select {
		case <-entered:
			held++
		case err := <-done:
			require.NoError(t, err, "call %d", i)
		}
	}
	require.Equal(t, probes, held)
	require.Equal(t, breaker.StateHalfOpen, c1.brk.State())
	require.Equal(t, probes, hits.count(1), "node 1 got its probes and nothing more")
	require.Equal(t, calls-probes, hits.count(2))
	require.Equal(t, probes, c1.brk.Snapshot().ProbesInFlight)

	close(release)
	for range probes {
		require.NoError(t, <-done)
	}
	require.Equal(t, breaker.StateClosed, c1.brk.State(), "the probes succeeded")
	require.Equal(t, 1.0, metricValue(t, m.metrics.breakerTransitions.WithLabelValues(testRole, "half-open")))
	require.Equal(t, 1.0, metricValue(t, m.metrics.breakerTransitions.WithLabelValues(testRole, "closed")))
}

func TestInvokeTurnsOpenBreakerHalfOpenWithoutTicker(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	var hits nodeSet
	m, clients := unitManager(t, clock, 1, func(c *Config) { c.Breaker.BreakJitter = 0 }, func(_ context.Context, id int64) error {
		hits.add(id)
		return nil
	})
	forceOpen(t, clients[0])
	require.ErrorIs(t, m.Invoke(context.Background(), testRole, callUnary), ErrAllNodesUnhealthy)
	clock.Advance(m.cfg.Breaker.BreakDuration)
	// No ticker runs here: the route reads the breaker's state, which
	// moves on in time by itself.
	for range m.cfg.Breaker.HalfOpenProbes {
		require.NoError(t, m.Invoke(context.Background(), testRole, callUnary))
	}
	require.Equal(t, breaker.StateClosed, clients[0].brk.State())
	require.Equal(t, m.cfg.Breaker.HalfOpenProbes, hits.count(1))
}

func TestRefreshTickerMovesIdleBreakers(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	m, clients := unitManager(t, clock, 1, func(c *Config) { c.Breaker.BreakJitter = 0 }, ok)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.refreshBreakers()
	}()
	t.Cleanup(func() {
		m.cancel()
		wg.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, clock.BlockUntilContext(ctx, 1), "the ticker")
	forceOpen(t, clients[0])
	clock.Advance(m.cfg.Breaker.BreakDuration)
	require.Eventually(t, func() bool {
		return metricValue(t, m.metrics.breakerTransitions.WithLabelValues(testRole, "half-open")) == 1
	}, testTimeout, time.Millisecond, "the ticker moved the breaker along; nobody else read it")
	require.Equal(t, 1, int(clients[0].shared.notClosed.Load()))
}
