package balancer

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var errNode = errors.New("node failed")

// warm makes every node known and moves the clock past the blackout; their
// samples are then stale, so the first picks measure them afresh.
func warm(l *LookAside, fc *clockwork.FakeClock, ids ...int64) {
	for _, id := range ids {
		l.Start(id).Done(time.Millisecond, nil)
	}
	fc.Advance(l.cfg.Blackout + time.Millisecond)
}

func TestLookAsideAvoidsFastFailingNode(t *testing.T) {
	tests := []struct {
		name      string
		penalty   time.Duration
		wantMajor int64
	}{
		{"with error penalty the healthy node wins", time.Second, 2},
		{"without it the failing node would win", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := clockwork.NewFakeClock()
			cfg := DefaultLookAsideConfig()
			cfg.ErrorPenalty = tt.penalty
			l := newTestLookAside(t, cfg, fc)
			warm(l, fc, 1, 2)
			nodes := map[int64]outcome{
				1: {latency: time.Millisecond, err: errNode}, // fails at once, every time
				2: {latency: 50 * time.Millisecond},          // slower, but works
			}
			counts := simulate(t, l, []int64{1, 2}, nodes, 1000)
			require.Greater(t, share(counts, tt.wantMajor), 0.95, "counts %v", counts)
		})
	}
}

func TestLookAsideExpiry(t *testing.T) {
	fc := clockwork.NewFakeClock()
	l := newTestLookAside(t, DefaultLookAsideConfig(), fc)
	warm(l, fc, 1, 2)
	nodes := map[int64]outcome{1: {latency: 100 * time.Millisecond}, 2: {latency: 10 * time.Millisecond}}
	candidates := []int64{1, 2}
	simulate(t, l, candidates, nodes, 10) // fresh samples for both

	st, ok := l.Stats(1)
	require.True(t, ok)
	require.True(t, st.Trusted)
	require.Positive(t, st.ResponseTime)
	counts := simulate(t, l, candidates, nodes, 200)
	require.Less(t, share(counts, 1), 0.05, "a slow node must be avoided: %v", counts)

	// Node 1 recovers while nobody calls it; its old average expires.
	fc.Advance(l.cfg.CostExpiry + time.Millisecond)
	st, _ = l.Stats(1)
	require.Zero(t, st.ResponseTime, "an expired average must be ignored")
	require.False(t, st.Trusted)

	nodes[1] = outcome{latency: 10 * time.Millisecond}
	counts = simulate(t, l, candidates, nodes, 400)
	require.InDelta(t, 0.5, share(counts, 1), 0.15, "after expiry the nodes are equal again: %v", counts)
}

func TestLookAsideBlackout(t *testing.T) {
	fc := clockwork.NewFakeClock()
	l := newTestLookAside(t, DefaultLookAsideConfig(), fc)
	warm(l, fc, 1, 2)
	nodes := map[int64]outcome{
		1: {latency: 10 * time.Millisecond},
		2: {latency: 20 * time.Millisecond},
		3: {latency: time.Millisecond}, // the newcomer looks fastest
	}
	candidates := []int64{1, 2, 3}
	simulate(t, l, []int64{1, 2}, nodes, 20)

	// Node 3 appears and answers fastest: during its blackout its
	// measurements are not trusted and it gets about its fair share, a
	// third.
	counts := simulate(t, l, candidates, nodes, 3000)
	st, _ := l.Stats(3)
	require.False(t, st.Trusted)
	require.InDelta(t, 1.0/3, share(counts, 3), 0.06, "counts %v", counts)
	require.Greater(t, counts[1], 3*counts[2], "trusted nodes compete by score: %v", counts)

	// Once the blackout is over, its measurements count.
	fc.Advance(l.cfg.Blackout)
	counts = simulate(t, l, candidates, nodes, 1000)
	require.Greater(t, share(counts, 3), 0.9, "counts %v", counts)
	st, _ = l.Stats(3)
	require.True(t, st.Trusted)
}

func TestLookAsideBlackoutCapsBusyNewcomer(t *testing.T) {
	fc := clockwork.NewFakeClock()
	l := newTestLookAside(t, DefaultLookAsideConfig(), fc)
	warm(l, fc, 1, 2)
	nodes := map[int64]outcome{1: {latency: 10 * time.Millisecond}, 2: {latency: 10 * time.Millisecond}}
	simulate(t, l, []int64{1, 2}, nodes, 10)

	var held []Call
	for i := 0; i < 3; i++ {
		held = append(held, l.Start(3)) // node 3 is new and already busier than average
	}
	counts := simulate(t, l, []int64{1, 2, 3}, nodes, 600)
	require.Zero(t, counts[3], "counts %v", counts)
	for _, c := range held {
		c.Done(time.Millisecond, nil)
	}
}

func TestLookAsideLeastLoadedWhenNothingTrusted(t *testing.T) {
	fc := clockwork.NewFakeClock()
	l := newTestLookAside(t, DefaultLookAsideConfig(), fc)
	var held []Call
	for id, n := range map[int64]int{1: 2, 3: 1} {
		for i := 0; i < n; i++ {
			held = append(held, l.Start(id))
		}
	}
	for i := 0; i < 200; i++ {
		id, ok := l.Pick([]int64{1, 2, 3}, nil)
		require.True(t, ok)
		require.Equal(t, int64(2), id)
	}
	for _, c := range held {
		c.Done(0, nil)
	}
}

func TestLookAsideScore(t *testing.T) {
	fc := clockwork.NewFakeClock()
	cfg := DefaultLookAsideConfig()
	cfg.Blackout = 0
	l := newTestLookAside(t, cfg, fc)
	l.Start(1).Done(10*time.Millisecond, nil)
	c := l.Start(1) // one call in flight

	st, ok := l.Stats(1)
	require.True(t, ok)
	require.True(t, st.Trusted)
	require.Equal(t, 10*time.Millisecond, st.ResponseTime)
	require.InDelta(t, float64(8*10*time.Millisecond), st.Score, 1, "(1+1)³ × R")

	c2 := l.Start(1)
	st, _ = l.Stats(1)
	require.InDelta(t, float64(27*10*time.Millisecond), st.Score, 1, "(1+2)³ × R")
	c.Done(10*time.Millisecond, nil)
	c2.Done(10*time.Millisecond, nil)

	// A node seen but never measured is not trusted.
	l.Start(2).Done(0, context.Canceled)
	st, _ = l.Stats(2)
	require.False(t, st.Trusted)
	require.Zero(t, st.ResponseTime)
	require.Zero(t, st.Score)

	_, ok = l.Stats(99)
	require.False(t, ok)
}

func TestLookAsideLatencyAverage(t *testing.T) {
	fc := clockwork.NewFakeClock()
	cfg := DefaultLookAsideConfig()
	cfg.Blackout = 0
	l := newTestLookAside(t, cfg, fc)
	rt := func() time.Duration {
		st, _ := l.Stats(1)
		return st.ResponseTime
	}

	l.Start(1).Done(10*time.Millisecond, nil)
	require.Equal(t, 10*time.Millisecond, rt())
	l.Start(1).Done(20*time.Millisecond, nil)
	require.Equal(t, 12500*time.Microsecond, rt(), "0.25 × 20 + 0.75 × 10")

	canceled := []error{
		context.Canceled,
		errors.Wrap(context.Canceled, "call"),
		status.Error(codes.Canceled, "client went away"),
	}
	for _, err := range canceled {
		l.Start(1).Done(time.Hour, err)
		require.Equal(t, 12500*time.Microsecond, rt(), "cancellation says nothing about the node: %v", err)
	}

	l.Start(1).Done(time.Millisecond, status.Error(codes.Unavailable, "down"))
	require.Equal(t, 259375*time.Microsecond, rt(), "a failure counts as ErrorPenalty: 0.25 × 1s + 0.75 × 12.5ms")

	fc.Advance(cfg.CostExpiry + time.Millisecond)
	require.Zero(t, rt(), "expired")
	l.Start(1).Done(40*time.Millisecond, nil)
	require.Equal(t, 40*time.Millisecond, rt(), "a stale average restarts from the next sample")
}
