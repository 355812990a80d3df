package clientmanager

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	ring "github.com/coordkit/clientmanager/internal/window"
)

// retryBudget is one role's RetryBudget: calls and retries counted in a
// ring of budgetBuckets buckets spanning the Window. Counting a call is
// lock-free (a clock read and an atomic add); spending a retry takes the
// mutex, which only failing calls do.
type retryBudget struct {
	ratio float64
	floor float64 // MinPerSecond × Window in seconds
	clock clockwork.Clock
	base  time.Time

	mu   sync.Mutex // moves the ring; guards every bucket's retries
	ring ring.Ring[budgetBucket, *budgetBucket]
}

// budgetBucket counts one slice of the Window.
type budgetBucket struct {
	calls   atomic.Int64
	retries int64 // under retryBudget.mu
}

// Reset empties the bucket; under retryBudget.mu.
func (b *budgetBucket) Reset() {
	b.calls.Store(0)
	b.retries = 0
}

func newRetryBudget(cfg RetryBudget, clock clockwork.Clock) *retryBudget {
	return &retryBudget{
		ratio: cfg.Ratio,
		floor: cfg.MinPerSecond * cfg.Window.Seconds(),
		clock: clock,
		base:  clock.Now(),
		ring:  ring.New[budgetBucket](cfg.Window, budgetBuckets),
	}
}

// now returns the time since the budget was made, in ns.
func (b *retryBudget) now() int64 {
	return int64(max(b.clock.Since(b.base), 0))
}

// deposit counts one call. A call counted concurrently into a bucket being
// emptied may be lost; the budget is a bound, not a ledger.
func (b *retryBudget) deposit() { b.depositAt(b.clock.Now()) }

// depositAt is deposit with at, the time on the budget's clock, read by
// the caller already.
func (b *retryBudget) depositAt(at time.Time) {
	if now := int64(max(at.Sub(b.base), 0)); b.ring.Due(now) {
		b.mu.Lock()
		b.ring.Advance(now, nil)
		b.mu.Unlock()
	}
	_, cur := b.ring.Current()
	cur.calls.Add(1)
}

// withdraw spends one retry and reports whether the budget allowed it:
// the retries in the window, this one included, may not exceed Ratio ×
// the calls in the window plus the floor. Call it only once the retry is
// certain to be made.
func (b *retryBudget) withdraw() bool { return b.take(true) }

// allows reports whether a retry would fit now, without spending it: a
// call checks it before it waits for a retry it may then not make.
func (b *retryBudget) allows() bool { return b.take(false) }

// take reports whether one more retry fits, and with spend counts it.
func (b *retryBudget) take(spend bool) bool {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ring.Advance(now, nil)
	var calls, retries int64
	for i := range b.ring.Len() {
		bk := b.ring.At(i)
		calls += bk.calls.Load()
		retries += bk.retries
	}
	if float64(retries+1) > b.ratio*float64(calls)+b.floor {
		return false
	}
	if spend {
		_, cur := b.ring.Current()
		cur.retries++
	}
	return true
}
