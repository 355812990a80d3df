package bulkhead

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// The state word packs the two counters that admission decisions read
// together, so that one compare-and-swap covers both: the low 32 bits count
// slots in use (or reserved), the high 32 bits count queued waiters.
const (
	inFlightMask = 1<<32 - 1
	queuedOne    = 1 << 32
	// dequeueOne added to the state word removes one queued waiter.
	dequeueOne = ^uint64(queuedOne - 1)
)

// Bulkhead bounds the concurrent calls to one node. It is safe for
// concurrent use and holds no goroutines, so it needs no Close.
//
// Invariants: the number of queued waiters equals the length of the wait
// list, and both change only under mu; while any waiter is queued every slot
// is in use, so a freed slot goes to the head of the queue and a newcomer
// cannot overtake it.
type Bulkhead struct {
	state atomic.Uint64 // in flight | queued<<32

	// slots holds one generation number per slot: even means free, odd means
	// in use by the Permit carrying that generation.
	slots []atomic.Uint64

	maxConcurrent uint64
	maxQueue      uint64
	maxWait       time.Duration
	clock         clockwork.Clock

	mu         sync.Mutex
	head, tail *waiter

	rejected atomic.Uint64
	timedOut atomic.Uint64
	canceled atomic.Uint64
}

// Permit is the right to run one call. Call Release once the call ends.
// The zero Permit holds nothing; releasing it does nothing.
type Permit struct {
	b    *Bulkhead
	gen  uint64
	slot uint32
}

// New returns a Bulkhead sized by cfg, or ErrInvalidConfig.
func New(cfg Config, opts ...Option) (*Bulkhead, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{clock: clockwork.NewRealClock()}
	for _, opt := range opts {
		opt(&o)
	}
	return &Bulkhead{
		slots:         make([]atomic.Uint64, cfg.MaxConcurrent),
		maxConcurrent: uint64(cfg.MaxConcurrent),
		maxQueue:      uint64(cfg.MaxQueue),
		maxWait:       cfg.MaxWait,
		clock:         o.clock,
	}, nil
}

// Acquire takes a slot, waiting in the queue if all are in use. It returns
// ErrBulkheadFull at once when the queue is full too, ErrBulkheadTimeout
// after MaxWait in the queue, and the context's error (wrapped) when ctx
// ends first. As with x/sync/semaphore, Acquire may succeed without waiting
// even if ctx is already done; a caller with a dead context is never queued.
//
// When a slot is free and nobody waits, Acquire is lock-free and does not
// allocate.
func (b *Bulkhead) Acquire(ctx context.Context) (Permit, error) {
	for {
		s := b.state.Load()
		if s>>32 == 0 && s&inFlightMask < b.maxConcurrent {
			if b.state.CompareAndSwap(s, s+1) {
				return b.claim(uint32(s & inFlightMask)), nil
			}
			continue
		}
		if s>>32 >= b.maxQueue {
			b.rejected.Add(1)
			return Permit{}, ErrBulkheadFull
		}
		return b.wait(ctx)
	}
}

// TryAcquire takes a slot only if one is free and nobody waits for one; it
// never queues. ok is false when the bulkhead is saturated.
func (b *Bulkhead) TryAcquire() (p Permit, ok bool) {
	for {
		s := b.state.Load()
		if s>>32 != 0 || s&inFlightMask >= b.maxConcurrent {
			return Permit{}, false
		}
		if b.state.CompareAndSwap(s, s+1) {
			return b.claim(uint32(s & inFlightMask)), true
		}
	}
}

// Release frees the slot, handing it to the longest-waiting caller if any.
// Only the first Release of an acquisition has an effect: later calls, on
// the Permit or on any copy of it, and calls on the zero Permit do nothing.
func (p Permit) Release() {
	b := p.b
	if b == nil || !b.slots[p.slot].CompareAndSwap(p.gen, p.gen+1) {
		return
	}
	for {
		s := b.state.Load()
		if s>>32 != 0 {
			if b.handOff(p.slot) {
				return
			}
			continue // the waiters left before we got the lock
		}
		if b.state.CompareAndSwap(s, s-1) {
			return
		}
	}
}

// claim marks a free slot as used and returns its Permit. The caller has
// already counted itself in the state word; since a slot is freed before the
// count drops, a reserved caller always finds a free slot.
func (b *Bulkhead) claim(start uint32) Permit {
	n := uint32(len(b.slots))
	i := start % n
	for tries := uint32(0); ; tries++ {
		g := b.slots[i].Load()
		if g&1 == 0 && b.slots[i].CompareAndSwap(g, g+1) {
			return Permit{b: b, gen: g + 1, slot: i}
		}
		if i++; i == n {
			i = 0
		}
		if tries == n {
			tries = 0
			runtime.Gosched() // the slot we are owed is being freed
		}
	}
}
