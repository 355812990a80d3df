package bulkhead

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
)

// waiter is one queued caller. granted and permit are written under
// Bulkhead.mu; ready receives one value when the waiter is granted.
type waiter struct {
	prev, next *waiter
	ready      chan struct{}
	granted    bool
	permit     Permit
}

// wait is the slow path of Acquire: enqueue and wait for a slot, MaxWait or
// the end of ctx, whichever comes first.
func (b *Bulkhead) wait(ctx context.Context) (Permit, error) {
	if err := ctx.Err(); err != nil {
		b.canceled.Add(1)
		return Permit{}, errors.Wrap(err, "bulkhead: waiting for a slot")
	}
	b.mu.Lock()
	for {
		s := b.state.Load()
		if s>>32 == 0 && s&inFlightMask < b.maxConcurrent {
			if b.state.CompareAndSwap(s, s+1) {
				b.mu.Unlock()
				return b.claim(uint32(s & inFlightMask)), nil
			}
			continue
		}
		if s>>32 >= b.maxQueue {
			b.mu.Unlock()
			b.rejected.Add(1)
			return Permit{}, ErrBulkheadFull
		}
		// Every slot is in use here; with q waiters already queued the
		// invariant says so too. Only lock-free paths race with us, and
		// they change the word only while nobody is queued.
		if b.state.CompareAndSwap(s, s+queuedOne) {
			break
		}
	}
	w := &waiter{ready: make(chan struct{}, 1)}
	b.pushBack(w)
	b.mu.Unlock()

	var timeout <-chan time.Time
	if b.maxWait > 0 {
		t := b.clock.NewTimer(b.maxWait)
		defer t.Stop()
		timeout = t.Chan()
	}
	select {
	case <-w.ready:
		return w.permit, nil
	case <-ctx.Done():
		if p, granted := b.leave(w); granted {
			// Handed a slot just as ctx ended: pass it on rather than
			// leak it. The next waiter, if any, gets it in order.
			p.Release()
		}
		b.canceled.Add(1)
		return Permit{}, errors.Wrap(ctx.Err(), "bulkhead: waiting for a slot")
	case <-timeout:
		if p, granted := b.leave(w); granted {
			return p, nil // handed a slot just in time: keep it
		}
		b.timedOut.Add(1)
		return Permit{}, errors.Wrapf(ErrBulkheadTimeout, "no slot within MaxWait (%s)", b.maxWait)
	}
}

// leave removes w from the queue. If w was granted a slot meanwhile, it
// returns that Permit and true; the caller then owns the slot.
func (b *Bulkhead) leave(w *waiter) (Permit, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.granted {
		return w.permit, true
	}
	b.unlink(w)
	b.state.Add(dequeueOne)
	return Permit{}, false
}

// handOff gives a slot to the head of the queue without changing the
// in-flight count. It reports false if the queue turned out to be empty.
// hint is the slot just freed by the caller, the likeliest one to be free.
func (b *Bulkhead) handOff(hint uint32) bool {
	b.mu.Lock()
	w := b.head
	if w == nil {
		b.mu.Unlock()
		return false
	}
	b.unlink(w)
	w.permit = b.claim(hint)
	w.granted = true
	b.state.Add(dequeueOne)
	b.mu.Unlock()
	w.ready <- struct{}{} // buffered, sent once: never blocks
	return true
}

func (b *Bulkhead) pushBack(w *waiter) {
	w.prev = b.tail
	if b.tail != nil {
		b.tail.next = w
	} else {
		b.head = w
	}
	b.tail = w
}

func (b *Bulkhead) unlink(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.tail = w.prev
	}
	w.prev, w.next = nil, nil
}
