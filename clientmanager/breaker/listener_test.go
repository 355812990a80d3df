package breaker

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

type transition struct{ from, to State }

// recorder collects listener events.
type recorder struct {
	mu     sync.Mutex
	events []transition
}

func (r *recorder) listen(from, to State) {
	r.mu.Lock()
	r.events = append(r.events, transition{from, to})
	r.mu.Unlock()
}

func (r *recorder) get() []transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transition(nil), r.events...)
}

func TestListenerSeesEachTransitionInOrder(t *testing.T) {
	var rec recorder
	b, clk := newTestBreaker(t, DefaultConfig(), WithOnStateChange(rec.listen))
	trip(t, b)
	reopen(t, b, clk)
	recoverBreaker(t, b, clk)
	require.Equal(t, []transition{
		{StateClosed, StateOpen},
		{StateOpen, StateHalfOpen},
		{StateHalfOpen, StateOpen},
		{StateOpen, StateHalfOpen},
		{StateHalfOpen, StateClosed},
	}, rec.get())
	require.Equal(t, uint64(len(rec.get())+1), b.Snapshot().Generation)
}

func TestListenerOncePerTransitionUnderConcurrency(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ConsecutiveFailures = 2
	cfg.HalfOpenProbes = 2
	cfg.BreakDurationFunc = func(int) time.Duration { return time.Millisecond }
	var rec recorder
	b, clk := newTestBreaker(t, cfg, WithOnStateChange(rec.listen))

	const workers, wantTransitions = 4, 200
	var wg sync.WaitGroup
	var stop atomic.Bool
	wg.Add(workers)
	for w := range workers {
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				tok, err := b.Allow()
				if err != nil {
					continue
				}
				if (i+w)%2 == 0 {
					b.Record(tok, Failure)
				} else {
					b.Record(tok, Success)
				}
			}
		}()
	}
	// Move time so open breakers become half-open while workers run, until
	// enough transitions happened.
	deadline := time.Now().Add(defaultTestTimeout)
	for b.word.Load()>>stateBits <= wantTransitions && time.Now().Before(deadline) {
		clk.Advance(time.Millisecond)
		b.State()
	}
	stop.Store(true)
	wg.Wait()

	events := rec.get()
	gen := b.Snapshot().Generation
	require.Equal(t, int(gen-1), len(events), "one event per transition")
	require.GreaterOrEqual(t, len(events), wantTransitions)
	t.Logf("%d transitions", len(events))
	prev := StateClosed
	for i, ev := range events {
		require.Equal(t, prev, ev.from, "event %d out of order", i)
		require.True(t, canTransition(ev.from, ev.to), "event %d: %s → %s", i, ev.from, ev.to)
		prev = ev.to
	}
	require.Equal(t, b.State(), prev)
}

func TestListenerMayCallBreaker(t *testing.T) {
	var b *Breaker
	seen := make(chan State, 16)
	listener := func(_, to State) {
		// Each of these takes the breaker's lock; none may deadlock.
		s := b.State()
		_, _ = b.Allow()
		_ = b.Snapshot()
		_ = b.Refresh()
		seen <- s
	}
	b, clk := newTestBreaker(t, DefaultConfig(), WithOnStateChange(listener))

	finished := make(chan struct{})
	go func() {
		defer close(finished)
		calls(t, b, 5, Failure)
		clk.Advance(5 * time.Second)
		b.State()
	}()
	select {
	case <-finished:
	case <-time.After(defaultTestTimeout):
		t.Fatal("a listener calling the breaker deadlocked it")
	}
	require.Equal(t, StateOpen, <-seen)
	// In the half-open event the listener sees half-open (its own Allow
	// took a probe, which does not change the state).
	require.Equal(t, StateHalfOpen, <-seen)
}

func TestListenerTransitionFromInsideListenerIsDeliveredAfter(t *testing.T) {
	var b *Breaker
	var rec recorder
	var once sync.Once
	first := func(_, to State) {
		if to == StateHalfOpen {
			// Fail the probe from inside the listener: a nested transition.
			once.Do(func() {
				tok, err := b.Allow()
				if err == nil {
					b.Record(tok, Failure)
				}
			})
		}
	}
	b, clk := newTestBreaker(t, DefaultConfig(), WithOnStateChange(first), WithOnStateChange(rec.listen))
	trip(t, b)
	clk.Advance(5 * time.Second)
	b.State()
	require.Equal(t, []transition{
		{StateClosed, StateOpen},
		{StateOpen, StateHalfOpen},
		{StateHalfOpen, StateOpen},
	}, rec.get())
}

func TestListenerPanicDoesNotStopLaterEvents(t *testing.T) {
	var rec recorder
	panicky := func(_, to State) {
		if to == StateOpen {
			panic("listener failure")
		}
	}
	b, clk := newTestBreaker(t, DefaultConfig(), WithOnStateChange(panicky), WithOnStateChange(rec.listen))
	require.Panics(t, func() { calls(t, b, 5, Failure) })
	clk.Advance(5 * time.Second)
	require.Equal(t, StateHalfOpen, b.State())
	require.Equal(t, []transition{{StateOpen, StateHalfOpen}}, rec.get())
}

func TestLogsOncePerTransition(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	b, clk := newTestBreaker(t, DefaultConfig(), WithLogger(zap.New(core).With(zap.Int64("node_id", 7))))
	calls(t, b, 4, Failure)
	calls(t, b, 100, Success)
	require.Zero(t, logs.Len(), "calls alone log nothing")
	trip(t, b)
	toHalfOpen(t, b, clk)
	entries := logs.AllUntimed()
	require.Len(t, entries, 2)
	for i, want := range []transition{{StateClosed, StateOpen}, {StateOpen, StateHalfOpen}} {
		fields := entries[i].ContextMap()
		require.Equal(t, want.from.String(), fields["from"])
		require.Equal(t, want.to.String(), fields["to"])
		require.Equal(t, int64(7), fields["node_id"])
	}
}
