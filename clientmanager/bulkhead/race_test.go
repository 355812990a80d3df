package bulkhead

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
)

// storeMax raises m to v if v is larger.
func storeMax(m *atomic.Int64, v int64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

func TestStressBoundsHoldAtEveryInstant(t *testing.T) {
	const (
		maxConcurrent = 4
		maxQueue      = 8
		workers       = 32
		iterations    = 300
	)
	b := newTestBulkhead(t, maxConcurrent, maxQueue, 0)

	var (
		running, maxRunning    atomic.Int64 // callers holding a permit, as seen by the callers
		maxInFlight, maxQueued atomic.Int64 // as reported by the bulkhead
		granted, rejected      atomic.Int64
		canceled               atomic.Int64
	)
	sample := func() {
		s := b.Stats()
		storeMax(&maxInFlight, int64(s.InFlight))
		storeMax(&maxQueued, int64(s.Queued))
	}

	stop := make(chan struct{})
	var samplerDone sync.WaitGroup
	samplerDone.Add(1)
	go func() {
		defer samplerDone.Done()
		for {
			select {
			case <-stop:
				return
			default:
				sample()
				runtime.Gosched()
			}
		}
	}()

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			for i := 0; i < iterations; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(4) == 0 {
					go cancel() // races the cancellation with the grant
				}
				p, err := b.Acquire(ctx)
				switch {
				case err == nil:
					granted.Add(1)
					storeMax(&maxRunning, running.Add(1))
					sample()
					runtime.Gosched()
					running.Add(-1)
					p.Release()
				case errors.Is(err, ErrBulkheadFull):
					rejected.Add(1)
				case errors.Is(err, context.Canceled):
					canceled.Add(1)
				default:
					t.Errorf("unexpected error: %v", err)
				}
				cancel()
			}
		}(uint64(w))
	}
	wg.Wait()
	close(stop)
	samplerDone.Wait()

	require.LessOrEqual(t, maxRunning.Load(), int64(maxConcurrent), "callers holding permits")
	require.LessOrEqual(t, maxInFlight.Load(), int64(maxConcurrent), "InFlight")
	require.LessOrEqual(t, maxQueued.Load(), int64(maxQueue), "Queued")
	require.Equal(t, int64(workers*iterations), granted.Load()+rejected.Load()+canceled.Load())
	require.Positive(t, granted.Load())
	s := b.Stats()
	require.Equal(t, uint64(rejected.Load()), s.Rejected)
	require.Equal(t, uint64(canceled.Load()), s.Canceled)
	requireFullyFree(t, b)
}

// TestGrantRacesCancel hands the only slot to a waiter at the same moment its
// context ends. Whichever wins, the slot must not leak.
func TestGrantRacesCancel(t *testing.T) {
	const iterations = 2000
	b := newTestBulkhead(t, 1, 1, 0)
	var won, lost int
	for i := 0; i < iterations; i++ {
		holder, ok := b.TryAcquire()
		require.True(t, ok, "iteration %d: slot leaked", i)

		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan result, 1)
		goAcquire(ctx, b, 0, out)
		spinUntil(t, "waiter queued", func() bool { return b.Queued() == 1 })

		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); <-start; cancel() }()
		go func() { defer wg.Done(); <-start; holder.Release() }()
		close(start)
		wg.Wait()

		r := receive(t, out)
		if r.err == nil {
			won++
			r.p.Release()
		} else {
			lost++
			require.ErrorIs(t, r.err, context.Canceled)
		}
		require.Equal(t, 0, b.InFlight(), "iteration %d", i)
		require.Equal(t, 0, b.Queued(), "iteration %d", i)
	}
	t.Logf("waiter got the slot %d times, gave it up %d times", won, lost)
	requireFullyFree(t, b)
}

// TestGrantRacesCancelPassesSlotOn checks the hand-on: when the head waiter
// is granted a slot as its context ends, the next waiter must get it.
func TestGrantRacesCancelPassesSlotOn(t *testing.T) {
	const iterations = 1000
	b := newTestBulkhead(t, 1, 2, 0)
	for i := 0; i < iterations; i++ {
		holder, ok := b.TryAcquire()
		require.True(t, ok, "iteration %d: slot leaked", i)

		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan result, 1)
		second := make(chan result, 1)
		goAcquire(ctx, b, 0, first)
		spinUntil(t, "first waiter queued", func() bool { return b.Queued() == 1 })
		goAcquire(context.Background(), b, 1, second)
		spinUntil(t, "second waiter queued", func() bool { return b.Queued() == 2 })

		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); <-start; cancel() }()
		go func() { defer wg.Done(); <-start; holder.Release() }()
		close(start)
		wg.Wait()

		r1 := receive(t, first)
		if r1.err == nil {
			r1.p.Release()
		} else {
			require.ErrorIs(t, r1.err, context.Canceled)
		}
		r2 := receive(t, second)
		require.NoError(t, r2.err, "iteration %d: the slot was not passed on", i)
		r2.p.Release()
		require.Equal(t, 0, b.InFlight(), "iteration %d", i)
		require.Equal(t, 0, b.Queued(), "iteration %d", i)
	}
	requireFullyFree(t, b)
}

// TestGrantRacesMaxWait hands the slot over as MaxWait runs out.
func TestGrantRacesMaxWait(t *testing.T) {
	const iterations = 1000
	fc := clockwork.NewFakeClock()
	b := newTestBulkhead(t, 1, 1, time.Second, WithClock(fc))
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	for i := 0; i < iterations; i++ {
		holder, ok := b.TryAcquire()
		require.True(t, ok, "iteration %d: slot leaked", i)

		out := make(chan result, 1)
		goAcquire(context.Background(), b, 0, out)
		require.NoError(t, fc.BlockUntilContext(ctx, 1))

		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); <-start; fc.Advance(time.Second) }()
		go func() { defer wg.Done(); <-start; holder.Release() }()
		close(start)
		wg.Wait()

		r := receive(t, out)
		if r.err == nil {
			r.p.Release()
		} else {
			require.ErrorIs(t, r.err, ErrBulkheadTimeout)
		}
		require.Equal(t, 0, b.InFlight(), "iteration %d", i)
		require.Equal(t, 0, b.Queued(), "iteration %d", i)
	}
	requireFullyFree(t, b)
}
