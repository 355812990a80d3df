package clientmanager

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// retryBudget is one role's RetryBudget: calls and retries counted in a
// ring of budgetBuckets buckets spanning the Window. Counting a call is
// lock-free (a clock read and an atomic add); spending a retry takes the
// mutex, which only failing calls do.
type retryBudget struct {
	ratio float64
	floor float64 // MinPerSecond × Window in seconds
	width int64   // bucket width, ns
	clock clockwork.Clock
	base  time.Time

	epoch atomic.Int64 // bucket number (ns since base / width) of the newest bucket
	calls [budgetBuckets]atomic.Int64

	mu      sync.Mutex
	retries [budgetBuckets]int64
}

func newRetryBudget(cfg RetryBudget, clock clockwork.Clock) *retryBudget {
	return &retryBudget{
		ratio: cfg.Ratio,
		floor: cfg.MinPerSecond * cfg.Window.Seconds(),
		width: int64(cfg.Window) / budgetBuckets,
		clock: clock,
		base:  clock.Now(),
	}
}

// bucket returns the bucket number of now.
func (b *retryBudget) bucket() int64 {
	d := b.clock.Since(b.base)
	if d < 0 {
		d = 0
	}
	return int64(d) / b.width
}

// deposit counts one call.
func (b *retryBudget) deposit() {
	e := b.bucket()
	if e > b.epoch.Load() {
		b.mu.Lock()
		b.rotateLocked(e)
		b.mu.Unlock()
	}
	b.calls[e%budgetBuckets].Add(1)
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
	e := b.bucket()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rotateLocked(e)
	var calls, retries int64
	for i := range budgetBuckets {
		calls += b.calls[i].Load()
		retries += b.retries[i]
	}
	if float64(retries+1) > b.ratio*float64(calls)+b.floor {
		return false
	}
	if spend {
		b.retries[e%budgetBuckets]++
	}
	return true
}

// rotateLocked makes bucket e the newest, emptying the buckets that fall
// out of the window on the way. A call counted concurrently into a bucket
// being emptied may be lost; the budget is a bound, not a ledger.
func (b *retryBudget) rotateLocked(e int64) {
	old := b.epoch.Load()
	if e <= old {
		return
	}
	steps := min(e-old, budgetBuckets)
	for i := e - steps + 1; i <= e; i++ {
		b.calls[i%budgetBuckets].Store(0)
		b.retries[i%budgetBuckets] = 0
	}
	b.epoch.Store(e)
}
