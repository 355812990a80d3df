package breaker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStateAndOutcomeStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{StateClosed.String(), "closed"},
		{StateOpen.String(), "open"},
		{StateHalfOpen.String(), "half-open"},
		{State(7).String(), "State(7)"},
		{Success.String(), "success"},
		{Failure.String(), "failure"},
		{Excluded.String(), "excluded"},
		{Outcome(9).String(), "Outcome(9)"},
	} {
		t.Run(tc.want, func(t *testing.T) { require.Equal(t, tc.want, tc.got) })
	}
}

func TestTransitionTable(t *testing.T) {
	allowed := map[[2]State]bool{
		{StateClosed, StateOpen}:     true,
		{StateOpen, StateHalfOpen}:   true,
		{StateHalfOpen, StateClosed}: true,
		{StateHalfOpen, StateOpen}:   true,
	}
	for _, from := range []State{StateClosed, StateOpen, StateHalfOpen, State(5)} {
		for _, to := range []State{StateClosed, StateOpen, StateHalfOpen, State(5)} {
			t.Run(from.String()+"→"+to.String(), func(t *testing.T) {
				require.Equal(t, allowed[[2]State{from, to}], canTransition(from, to))
			})
		}
	}
}

func TestConsecutiveFailuresBoundary(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
		want     State
	}{
		{"one below the threshold stays closed", 4, StateClosed},
		{"reaching the threshold opens", 5, StateOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.FailureRatio = 0
			b, _ := newTestBreaker(t, cfg)
			calls(t, b, tc.failures, Failure)
			require.Equal(t, tc.want, b.State())
		})
	}
	t.Run("a success resets the run", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.FailureRatio = 0
		b, _ := newTestBreaker(t, cfg)
		calls(t, b, 4, Failure)
		call(t, b, Success)
		require.Equal(t, 0, b.Snapshot().ConsecutiveFailures)
		calls(t, b, 4, Failure)
		require.Equal(t, StateClosed, b.State())
		call(t, b, Failure)
		require.Equal(t, StateOpen, b.State())
	})
}

func TestFailureRatioBoundary(t *testing.T) {
	for _, tc := range []struct {
		name                string
		successes, failures int // successes are recorded first
		ratio               float64
		want                State
	}{
		{"ratio exactly at the threshold opens (≥)", 10, 10, 0.5, StateOpen},
		{"ratio just below the threshold stays closed", 11, 9, 0.5, StateClosed},
		{"exactly 0.1 opens at 0.1", 18, 2, 0.1, StateOpen},
		{"ratio 1 needs every call failed", 1, 19, 1, StateClosed},
		{"ratio 1 with all failures opens", 0, 20, 1, StateOpen},
		{"below minimum throughput never opens", 0, 19, 0.5, StateClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ConsecutiveFailures = 0
			cfg.FailureRatio = tc.ratio
			b, _ := newTestBreaker(t, cfg)
			calls(t, b, tc.successes, Success)
			calls(t, b, tc.failures, Failure)
			require.Equal(t, tc.want, b.State())
		})
	}
}

func TestNoTripBelowMinimumThroughput(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ConsecutiveFailures = 0
	b, _ := newTestBreaker(t, cfg)
	calls(t, b, cfg.MinimumThroughput-1, Failure)
	snap := b.Snapshot()
	require.Equal(t, StateClosed, snap.State)
	require.Equal(t, uint64(cfg.MinimumThroughput-1), snap.Failures)
	call(t, b, Failure)
	require.Equal(t, StateOpen, b.State())
}

func TestBucketsExpire(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ConsecutiveFailures = 0
	b, clk := newTestBreaker(t, cfg)

	calls(t, b, 10, Failure)
	clk.Advance(5 * time.Second)
	calls(t, b, 5, Failure)
	calls(t, b, 3, Success)
	snap := b.Snapshot()
	require.Equal(t, uint64(18), snap.Requests)
	require.Equal(t, uint64(15), snap.Failures)

	// The first bucket leaves the window; the later ones stay.
	clk.Advance(5 * time.Second)
	snap = b.Snapshot()
	require.Equal(t, uint64(8), snap.Requests)
	require.Equal(t, uint64(5), snap.Failures)

	// Past the whole window every count is gone.
	clk.Advance(cfg.Window)
	snap = b.Snapshot()
	require.Zero(t, snap.Requests)
	require.Zero(t, snap.Failures)

	// Expired failures do not count towards the ratio: 19 old failures and
	// one new one are one failure in the window.
	calls(t, b, 19, Failure)
	clk.Advance(cfg.Window)
	call(t, b, Failure)
	require.Equal(t, StateClosed, b.State())
	require.Equal(t, uint64(1), b.Snapshot().Failures)
}

func TestRefreshMovesCoarseClock(t *testing.T) {
	cfg := DefaultConfig()
	b, clk := newTestBreaker(t, cfg)
	calls(t, b, 7, Success)
	require.Equal(t, StateClosed, b.Refresh()) // the router's tick dates them
	clk.Advance(cfg.Window)
	require.Equal(t, StateClosed, b.Refresh())
	require.Zero(t, b.Snapshot().Requests, "dated successes expire with their bucket")
	// Successes after the refresh land in the new bucket and survive
	// until it expires.
	calls(t, b, 3, Success)
	require.Equal(t, StateClosed, b.Refresh())
	width := cfg.Window / time.Duration(cfg.Buckets)
	clk.Advance(cfg.Window - width)
	require.Equal(t, uint64(3), b.Snapshot().Requests)
	clk.Advance(width)
	require.Zero(t, b.Snapshot().Requests)
}

func TestCoarseClockRefreshedBySuccesses(t *testing.T) {
	cfg := DefaultConfig()
	b, clk := newTestBreaker(t, cfg)
	clk.Advance(cfg.Window)
	// The refreshEvery-th success in the stale bucket reads the clock and
	// rotates; the ones after it are counted in the current bucket.
	calls(t, b, refreshEvery+5, Success)
	require.Equal(t, b.win.ring.Epoch(), int64(cfg.Window)/b.win.ring.Width())
}

func TestLateResultsIgnored(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FailureRatio = 0
	b, clk := newTestBreaker(t, cfg)

	early, err := b.Allow() // admitted in the first closed generation
	require.NoError(t, err)
	trip(t, b)
	b.Record(early, Success)
	require.Equal(t, cfg.ConsecutiveFailures, b.Snapshot().ConsecutiveFailures, "a late success must not reset the count")

	toHalfOpen(t, b, clk)
	for _, tok := range probes(t, b, cfg.HalfOpenProbes) {
		b.Record(tok, Success)
	}
	require.Equal(t, StateClosed, b.State())

	// A late failure from the first generation changes nothing now.
	before := b.Snapshot()
	b.Record(early, Failure)
	after := b.Snapshot()
	require.Equal(t, before, after)

	// Nor does the zero token.
	b.Record(Token{}, Failure)
	require.Equal(t, 0, b.Snapshot().ConsecutiveFailures)
}

func TestExcludedWhileClosedDecidesNothing(t *testing.T) {
	cfg := DefaultConfig()
	b, _ := newTestBreaker(t, cfg)
	calls(t, b, 3, Failure)
	calls(t, b, 10, Excluded)
	snap := b.Snapshot()
	require.Equal(t, 3, snap.ConsecutiveFailures)
	require.Equal(t, uint64(3), snap.Requests)
}

func TestClosedPathDoesNotAllocate(t *testing.T) {
	b, _ := newTestBreaker(t, DefaultConfig())
	allocs := testing.AllocsPerRun(1000, func() {
		tok, err := b.Allow()
		if err == nil {
			b.Record(tok, Success)
		}
	})
	require.Zero(t, allocs)
}

func TestOpenRefusesWithErrOpen(t *testing.T) {
	b, clk := newTestBreaker(t, DefaultConfig())
	trip(t, b)
	clk.Advance(b.Snapshot().BreakDuration - time.Nanosecond)
	_, err := b.Allow()
	require.ErrorIs(t, err, ErrOpen)
	require.Equal(t, StateOpen, b.State())
	snap := b.Snapshot()
	require.Equal(t, clk.Now().Add(-snap.BreakDuration+time.Nanosecond), snap.OpenedAt)
	require.False(t, snap.LastFailure.IsZero())
}
