package breaker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
)

func TestOpenBecomesHalfOpenWithoutTraffic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(*Breaker) State
	}{
		{"State", (*Breaker).State},
		{"Refresh", (*Breaker).Refresh},
		{"Snapshot", func(b *Breaker) State { return b.Snapshot().State }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []State
			b, clk := newTestBreaker(t, DefaultConfig(), WithOnStateChange(func(_, to State) { seen = append(seen, to) }))
			trip(t, b)
			clk.Advance(b.Snapshot().BreakDuration)
			// No Allow: the check alone must perform the transition.
			require.Equal(t, StateHalfOpen, tc.check(b))
			require.Equal(t, []State{StateOpen, StateHalfOpen}, seen)
		})
	}
}

func TestHalfOpenAdmitsExactlyProbesUnderRace(t *testing.T) {
	const goroutines = 1000
	cfg := DefaultConfig()
	b, clk := newTestBreaker(t, cfg)
	trip(t, b)

	var (
		admitted, tooMany, other atomic.Int64
		ready, done              sync.WaitGroup
		start                    = make(chan struct{})
	)
	ready.Add(goroutines)
	done.Add(goroutines)
	for range goroutines {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			tok, err := b.Allow()
			switch {
			case err == nil && tok.Probe():
				admitted.Add(1)
			case errors.Is(err, ErrTooManyProbes):
				tooMany.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	ready.Wait()
	clk.Advance(b.Snapshot().BreakDuration) // the instant the break ends
	close(start)
	done.Wait()

	require.Equal(t, int64(cfg.HalfOpenProbes), admitted.Load())
	require.Equal(t, int64(goroutines-cfg.HalfOpenProbes), tooMany.Load())
	require.Zero(t, other.Load())
	require.Equal(t, StateHalfOpen, b.State())
}

func TestHalfOpenResults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		outcomes []Outcome
		want     State
	}{
		{"all probes succeed: closed", []Outcome{Success, Success, Success}, StateClosed},
		{"two of three succeed: still half-open", []Outcome{Success, Success}, StateHalfOpen},
		{"first probe fails: open", []Outcome{Failure}, StateOpen},
		{"last probe fails: open", []Outcome{Success, Success, Failure}, StateOpen},
		{"excluded decides nothing", []Outcome{Success, Excluded, Success}, StateHalfOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, clk := newTestBreaker(t, DefaultConfig())
			trip(t, b)
			toHalfOpen(t, b, clk)
			toks := probes(t, b, 3)
			for i, o := range tc.outcomes {
				b.Record(toks[i], o)
			}
			require.Equal(t, tc.want, b.State())
		})
	}
}

func TestClosingStartsFreshWindow(t *testing.T) {
	cfg := DefaultConfig()
	b, clk := newTestBreaker(t, cfg)
	trip(t, b)
	toHalfOpen(t, b, clk)
	for _, tok := range probes(t, b, cfg.HalfOpenProbes) {
		b.Record(tok, Success)
	}
	snap := b.Snapshot()
	require.Equal(t, StateClosed, snap.State)
	require.Zero(t, snap.Requests)
	require.Zero(t, snap.ConsecutiveFailures)
}

func TestProbeReportedTwiceCountsOnce(t *testing.T) {
	b, clk := newTestBreaker(t, DefaultConfig())
	trip(t, b)
	toHalfOpen(t, b, clk)
	toks := probes(t, b, 3)
	b.Record(toks[0], Success)
	b.Record(toks[0], Success)
	b.Record(toks[0], Success)
	require.Equal(t, StateHalfOpen, b.State())
	require.Equal(t, 2, b.Snapshot().ProbesInFlight)
}

func TestHungProbeReclaimedAfterLease(t *testing.T) {
	cfg := DefaultConfig()
	b, clk := newTestBreaker(t, cfg)
	trip(t, b)
	toHalfOpen(t, b, clk)
	hung := probes(t, b, cfg.HalfOpenProbes)
	_, err := b.Allow()
	require.ErrorIs(t, err, ErrTooManyProbes)

	clk.Advance(cfg.ProbeLease - 1)
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrTooManyProbes, "the lease is not over yet")

	// The lease is over: the hung probe counts as failed and the breaker
	// reopens instead of staying wedged in half-open.
	clk.Advance(1)
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrOpen)
	require.Equal(t, StateOpen, b.State())

	// The next half-open period has all its permits, and the hung probes'
	// late results change nothing.
	toHalfOpen(t, b, clk)
	for _, tok := range hung {
		b.Record(tok, Success)
		b.Record(tok, Failure)
	}
	require.Equal(t, StateHalfOpen, b.State())
	fresh := probes(t, b, cfg.HalfOpenProbes)
	for _, tok := range fresh {
		b.Record(tok, Success)
	}
	require.Equal(t, StateClosed, b.State())
}

func TestCallerCancellationFreesProbePermit(t *testing.T) {
	cfg := DefaultConfig()
	b, clk := newTestBreaker(t, cfg)
	trip(t, b)
	toHalfOpen(t, b, clk)
	toks := probes(t, b, cfg.HalfOpenProbes)
	_, err := b.Allow()
	require.ErrorIs(t, err, ErrTooManyProbes)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Done(toks[0], context.Canceled, ctx)
	require.Equal(t, StateHalfOpen, b.State(), "a cancelled caller says nothing about the node")

	tok, err := b.Allow()
	require.NoError(t, err, "the cancelled probe's permit is free again")
	require.True(t, tok.Probe())
	_, err = b.Allow()
	require.ErrorIs(t, err, ErrTooManyProbes)

	for _, tk := range []Token{toks[1], toks[2], tok} {
		b.Done(tk, nil, context.Background())
	}
	require.Equal(t, StateClosed, b.State())
}

func TestSuccessfulProbesLimitAdmission(t *testing.T) {
	b, clk := newTestBreaker(t, DefaultConfig())
	trip(t, b)
	toHalfOpen(t, b, clk)
	toks := probes(t, b, 3)
	b.Record(toks[0], Success)
	// Two probes run and one succeeded: three decide, so no fourth.
	_, err := b.Allow()
	require.ErrorIs(t, err, ErrTooManyProbes)
}
