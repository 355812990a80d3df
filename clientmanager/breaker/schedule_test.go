package breaker

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
)

// reopen moves an open breaker to half-open and fails a probe.
func reopen(t *testing.T, b *Breaker, clk *clockwork.FakeClock) {
	t.Helper()
	toHalfOpen(t, b, clk)
	call(t, b, Failure)
	require.Equal(t, StateOpen, b.State())
}

// recoverBreaker moves an open breaker to closed through successful probes.
func recoverBreaker(t *testing.T, b *Breaker, clk *clockwork.FakeClock) {
	t.Helper()
	toHalfOpen(t, b, clk)
	calls(t, b, b.cfg.HalfOpenProbes, Success)
	require.Equal(t, StateClosed, b.State())
}

func TestBreakDurationDoublesUpToMax(t *testing.T) {
	b, clk := newTestBreaker(t, DefaultConfig())
	trip(t, b)
	got := []time.Duration{b.Snapshot().BreakDuration}
	for range 5 {
		reopen(t, b, clk)
		got = append(got, b.Snapshot().BreakDuration)
	}
	s := time.Second
	require.Equal(t, []time.Duration{5 * s, 10 * s, 20 * s, 40 * s, 60 * s, 60 * s}, got)
	require.Equal(t, 6, b.Snapshot().ConsecutiveOpens)
}

func TestBreakDurationAfterClosing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		closed time.Duration // how long the breaker stays closed before tripping again
		want   time.Duration
	}{
		{"tripping again within a window keeps growing", 9 * time.Second, 20 * time.Second},
		{"a clean window resets the growth", 10 * time.Second, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, clk := newTestBreaker(t, DefaultConfig())
			trip(t, b)
			reopen(t, b, clk) // 10 s
			recoverBreaker(t, b, clk)
			clk.Advance(tc.closed)
			trip(t, b)
			require.Equal(t, tc.want, b.Snapshot().BreakDuration)
		})
	}
}

func TestBreakDurationJitter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter float64
		r      float64
		want   time.Duration
	}{
		{"no jitter", 0, 0.9, 5 * time.Second},
		{"half of 20 %", 0.2, 0.5, 4500 * time.Millisecond},
		{"almost all of 20 %", 0.2, 0.999, 4001 * time.Millisecond},
		{"out-of-range rand is ignored", 0.2, 7, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.BreakJitter = tc.jitter
			b, _ := newTestBreaker(t, cfg, WithRand(func() float64 { return tc.r }))
			trip(t, b)
			require.Equal(t, tc.want, b.Snapshot().BreakDuration)
		})
	}
}

func TestBreakDurationFuncReplacesSchedule(t *testing.T) {
	cfg := DefaultConfig()
	var gotN []int
	cfg.BreakDurationFunc = func(n int) time.Duration {
		gotN = append(gotN, n)
		return time.Duration(n) * time.Second
	}
	b, clk := newTestBreaker(t, cfg, WithRand(func() float64 { return 0.9 }))
	trip(t, b)
	require.Equal(t, time.Second, b.Snapshot().BreakDuration)
	reopen(t, b, clk)
	require.Equal(t, 2*time.Second, b.Snapshot().BreakDuration)
	reopen(t, b, clk)
	require.Equal(t, 3*time.Second, b.Snapshot().BreakDuration)
	require.Equal(t, []int{1, 2, 3}, gotN)

	// The break really lasts what the generator said.
	clk.Advance(3*time.Second - 1)
	require.Equal(t, StateOpen, b.State())
	clk.Advance(1)
	require.Equal(t, StateHalfOpen, b.State())
}

func TestBreakDurationFuncMayCallBreaker(t *testing.T) {
	cfg := DefaultConfig()
	var b *Breaker
	var seen State
	cfg.BreakDurationFunc = func(int) time.Duration {
		seen = b.State() // must not deadlock: called outside the lock
		return time.Second
	}
	b, _ = newTestBreaker(t, cfg)
	trip(t, b)
	require.Equal(t, StateOpen, seen)
}
