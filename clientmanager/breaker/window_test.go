package breaker

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// After an idle period longer than the window, the successes recorded
// before the clock is next read must count in the window, not expire with
// the bucket they were added to.
func TestSuccessesAfterIdleCountInTheWindow(t *testing.T) {
	cfg := DefaultConfig() // 5 in a row, or ≥ 50 % of ≥ 20 calls in 10 s
	idle := cfg.Window + time.Second

	// alternate records n failures and n-1 successes in between, so the
	// consecutive rule never trips.
	alternate := func(t *testing.T, b *Breaker, n int) {
		t.Helper()
		for i := range n {
			if i > 0 {
				call(t, b, Success)
			}
			call(t, b, Failure)
		}
	}

	t.Run("fewer successes than a clock read", func(t *testing.T) {
		b, clk := newTestBreaker(t, cfg)
		clk.Advance(idle)
		calls(t, b, 25, Success) // fewer than refreshEvery: no clock read
		alternate(t, b, 11)
		// In the window: 35 successes, 11 failures = 24 % failures.
		snap := b.Snapshot()
		require.Equal(t, StateClosed, snap.State, "%+v", snap)
		require.Equal(t, uint64(35+11), snap.Requests)
		require.Equal(t, uint64(11), snap.Failures)
	})

	t.Run("a success reads the clock", func(t *testing.T) {
		b, clk := newTestBreaker(t, cfg)
		calls(t, b, 5, Success)
		require.Equal(t, StateClosed, b.Refresh()) // dated at 0: these expire
		clk.Advance(idle)
		calls(t, b, refreshEvery+3, Success) // the refreshEvery-th rotates
		alternate(t, b, 20)
		snap := b.Snapshot()
		require.Equal(t, StateClosed, snap.State, "%+v", snap)
		require.Equal(t, uint64(refreshEvery+3+19+20), snap.Requests)
		require.Equal(t, uint64(20), snap.Failures)
	})

	t.Run("carried successes expire a window later", func(t *testing.T) {
		b, clk := newTestBreaker(t, cfg)
		clk.Advance(idle)
		calls(t, b, 25, Success)
		call(t, b, Failure)
		require.Equal(t, uint64(26), b.Snapshot().Requests)
		clk.Advance(cfg.Window - time.Nanosecond)
		require.Equal(t, uint64(26), b.Snapshot().Requests)
		clk.Advance(time.Nanosecond)
		require.Zero(t, b.Snapshot().Requests)
	})

	t.Run("dated successes do not hide failures", func(t *testing.T) {
		cfg := cfg
		cfg.ConsecutiveFailures = 0
		b, clk := newTestBreaker(t, cfg)
		calls(t, b, 25, Success)
		require.Equal(t, StateClosed, b.Refresh())
		clk.Advance(idle)
		calls(t, b, cfg.MinimumThroughput, Failure)
		require.Equal(t, StateOpen, b.State())
	})
}

// Rotations racing with lock-free successes neither lose nor double a
// success while nothing expires.
func TestRotationKeepsConcurrentSuccesses(t *testing.T) {
	cfg := DefaultConfig()
	b, clk := newTestBreaker(t, cfg)
	const workers, each = 4, 2000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				tok, err := b.Allow()
				if err == nil {
					b.Record(tok, Success)
				}
			}
		})
	}
	width := cfg.Window / time.Duration(cfg.Buckets)
	for range cfg.Buckets - 1 { // the first bucket stays in the window
		clk.Advance(width)
		b.Refresh()
	}
	wg.Wait()
	snap := b.Snapshot()
	require.Equal(t, StateClosed, snap.State)
	require.Equal(t, uint64(workers*each), snap.Requests)
}
