package bulkhead

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
)

func TestAcquireUpToMaxConcurrentThenFull(t *testing.T) {
	tests := []struct {
		name          string
		maxConcurrent int
	}{
		{"one slot", 1},
		{"three slots", 3},
		{"default size", 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBulkhead(t, tt.maxConcurrent, 0, time.Second)
			ctx := context.Background()
			var held []Permit
			for i := 0; i < tt.maxConcurrent; i++ {
				p, err := b.Acquire(ctx)
				require.NoError(t, err)
				held = append(held, p)
				require.Equal(t, i+1, b.InFlight())
			}
			_, err := b.Acquire(ctx)
			require.ErrorIs(t, err, ErrBulkheadFull)
			_, ok := b.TryAcquire()
			require.False(t, ok)
			require.Equal(t, uint64(1), b.Stats().Rejected)
			for _, p := range held {
				p.Release()
			}
			requireFullyFree(t, b)
		})
	}
}

func TestQueueFullRejectsImmediately(t *testing.T) {
	b := newTestBulkhead(t, 1, 2, 0)
	holder, err := b.Acquire(context.Background())
	require.NoError(t, err)

	out := make(chan result, 2)
	for i := 0; i < 2; i++ {
		goAcquire(context.Background(), b, i, out)
		spinUntil(t, "waiter queued", func() bool { return b.Queued() == i+1 })
	}
	// The queue is full: the next caller must fail at once, not wait for
	// this context (which would end the test with a different error).
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	_, err = b.Acquire(ctx)
	require.ErrorIs(t, err, ErrBulkheadFull)
	require.NoError(t, ctx.Err())
	require.Equal(t, 2, b.Queued())

	holder.Release()
	for i := 0; i < 2; i++ {
		r := receive(t, out)
		require.NoError(t, r.err)
		r.p.Release()
	}
	requireFullyFree(t, b)
	require.Equal(t, Stats{MaxConcurrent: 1, MaxQueue: 2, Rejected: 1}, b.Stats())
}

func TestFIFOOrder(t *testing.T) {
	tests := []struct {
		name     string
		waiters  int
		cancelID int // waiter cancelled while queued; -1 for none
	}{
		{"ten waiters", 10, -1},
		{"middle waiter cancelled", 6, 2},
		{"head waiter cancelled", 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBulkhead(t, 2, tt.waiters, 0)
			var held []Permit
			for i := 0; i < 2; i++ {
				p, err := b.Acquire(context.Background())
				require.NoError(t, err)
				held = append(held, p)
			}
			out := make(chan result, tt.waiters)
			cancels := make([]context.CancelFunc, tt.waiters)
			for i := 0; i < tt.waiters; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				cancels[i] = cancel
				goAcquire(ctx, b, i, out)
				spinUntil(t, "waiter queued", func() bool { return b.Queued() == i+1 })
			}
			defer func() {
				for _, c := range cancels {
					c()
				}
			}()
			want := make([]int, 0, tt.waiters)
			for i := 0; i < tt.waiters; i++ {
				if i != tt.cancelID {
					want = append(want, i)
				}
			}
			if tt.cancelID >= 0 {
				cancels[tt.cancelID]()
				r := receive(t, out)
				require.Equal(t, tt.cancelID, r.id)
				require.ErrorIs(t, r.err, context.Canceled)
				require.Equal(t, tt.waiters-1, b.Queued())
			}
			// Release one slot at a time; each must go to the next waiter
			// in arrival order, which then holds it.
			var got []int
			for range want {
				held[0].Release()
				held = held[1:]
				r := receive(t, out)
				require.NoError(t, r.err)
				got = append(got, r.id)
				held = append(held, r.p)
				require.Equal(t, 2, b.InFlight())
			}
			require.Equal(t, want, got)
			for _, p := range held {
				p.Release()
			}
			requireFullyFree(t, b)
		})
	}
}

func TestMaxWaitWithFakeClock(t *testing.T) {
	fc := clockwork.NewFakeClock()
	b := newTestBulkhead(t, 1, 4, time.Second, WithClock(fc))
	holder, err := b.Acquire(context.Background())
	require.NoError(t, err)

	out := make(chan result, 1)
	goAcquire(context.Background(), b, 0, out)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	require.NoError(t, fc.BlockUntilContext(ctx, 1)) // the waiter's MaxWait timer

	fc.Advance(999 * time.Millisecond)
	select {
	case r := <-out:
		t.Fatalf("waiter returned before MaxWait: %+v", r)
	default:
	}
	require.Equal(t, 1, b.Queued())

	fc.Advance(time.Millisecond)
	r := receive(t, out)
	require.ErrorIs(t, r.err, ErrBulkheadTimeout)
	require.NotErrorIs(t, r.err, ErrBulkheadFull)
	require.True(t, IsOverloaded(r.err))
	require.ErrorContains(t, r.err, "MaxWait (1s)")
	require.Equal(t, 0, b.Queued())
	require.Equal(t, 1, b.InFlight())
	require.Equal(t, uint64(1), b.Stats().TimedOut)

	holder.Release()
	requireFullyFree(t, b)
}

func TestCancelledWaitersLeaveQueue(t *testing.T) {
	const waiters = 5
	b := newTestBulkhead(t, 1, waiters, time.Hour)
	holder, err := b.Acquire(context.Background())
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan result, waiters)
	for i := 0; i < waiters; i++ {
		goAcquire(ctx, b, i, out)
	}
	spinUntil(t, "all waiters queued", func() bool { return b.Queued() == waiters })
	cancel()
	for i := 0; i < waiters; i++ {
		r := receive(t, out)
		require.ErrorIs(t, r.err, context.Canceled)
		require.False(t, IsOverloaded(r.err))
	}
	require.Equal(t, 0, b.Queued())
	require.Equal(t, 1, b.InFlight())
	require.Equal(t, uint64(waiters), b.Stats().Canceled)

	holder.Release()
	requireFullyFree(t, b)
}

func TestDeadContext(t *testing.T) {
	b := newTestBulkhead(t, 1, 4, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	// A free slot is granted regardless, as x/sync/semaphore does.
	p, err := b.Acquire(ctx)
	require.NoError(t, err)

	// A dead caller is never queued.
	_, err = b.Acquire(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 0, b.Queued())
	p.Release()
	requireFullyFree(t, b)
}

func TestDoubleReleaseIsHarmless(t *testing.T) {
	t.Run("while others hold slots", func(t *testing.T) {
		b := newTestBulkhead(t, 2, 0, 0)
		p1, err := b.Acquire(context.Background())
		require.NoError(t, err)
		p2, err := b.Acquire(context.Background())
		require.NoError(t, err)

		copyOfP1 := p1
		p1.Release()
		p1.Release()
		copyOfP1.Release()
		Permit{}.Release()
		require.Equal(t, 1, b.InFlight())

		p3, err := b.Acquire(context.Background())
		require.NoError(t, err)
		p1.Release() // must not free p3's slot, though it may reuse p1's
		require.Equal(t, 2, b.InFlight())
		_, ok := b.TryAcquire()
		require.False(t, ok)

		p2.Release()
		p3.Release()
		requireFullyFree(t, b)
	})
	t.Run("after a hand-off to a waiter", func(t *testing.T) {
		b := newTestBulkhead(t, 1, 1, 0)
		p1, err := b.Acquire(context.Background())
		require.NoError(t, err)
		out := make(chan result, 1)
		goAcquire(context.Background(), b, 0, out)
		spinUntil(t, "waiter queued", func() bool { return b.Queued() == 1 })

		p1.Release()
		r := receive(t, out)
		require.NoError(t, r.err)
		p1.Release() // the waiter now owns that very slot
		require.Equal(t, 1, b.InFlight())
		_, ok := b.TryAcquire()
		require.False(t, ok)

		r.p.Release()
		requireFullyFree(t, b)
	})
}
