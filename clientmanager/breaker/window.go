package breaker

import (
	"sync/atomic"
	"time"

	ring "github.com/coordkit/clientmanager/internal/window"
)

const (
	// cacheLine is the padding unit that keeps hot counters apart.
	cacheLine = 64
	// refreshEvery is how many successes in a bucket pass between two
	// reads of the clock on the closed path. A power of two.
	refreshEvery = 32
)

// bucket counts the results of one slice of the window. Each bucket has a
// cache line of its own, so the current one does not share a line with
// the breaker's read-mostly fields.
type bucket struct {
	successes atomic.Uint64
	failures  atomic.Uint64
	// dated is how many of successes were counted before the clock was
	// last read and found this bucket current; the rest came after that
	// read, at a time the window does not know.
	dated atomic.Uint64
	_     [cacheLine - 24]byte
}

// Reset empties the bucket when its slice leaves the window.
func (b *bucket) Reset() {
	b.successes.Store(0)
	b.failures.Store(0)
	b.dated.Store(0)
}

// window is a ring of buckets covering the last Config.Window. Successes
// are added lock-free to the current bucket; everything else (rotation,
// failures, totals) happens under the breaker's lock.
//
// The current bucket is chosen by a coarse clock, read only now and then,
// so the successes counted since the last read may be much younger than
// the bucket (the first calls after an idle period land in a bucket that
// expired long ago). A rotation therefore carries them into the new
// current bucket: they are dated at the read that finds the window moved.
type window struct {
	ring ring.Ring[bucket, *bucket]
}

func newWindow(length time.Duration, n int) window {
	return window{ring: ring.New[bucket](length, n)}
}

// due reports whether the coarse clock is behind now, so a rotation
// (which needs the lock) is worth trying.
func (w *window) due(now int64) bool { return w.ring.Due(now) }

// rotateLocked moves the current bucket to the one of now, clearing the
// buckets that expire on the way and carrying the successes counted since
// the clock was last read into the new bucket. Time never moves the window
// backwards. Every success counted so far is dated afterwards.
func (w *window) rotateLocked(now int64) {
	_, cur := w.ring.Current()
	if !w.ring.Due(now) {
		cur.dated.Store(cur.successes.Load())
		return
	}
	s := cur.successes.Load()
	undated := s - min(s, cur.dated.Load())
	cur.successes.Add(-undated)
	// The new bucket is filled before its index is published, so a
	// success that sees the new index lands in a clean bucket that keeps
	// the carried ones.
	w.ring.Advance(now, func(next *bucket) {
		next.successes.Add(undated)
		next.dated.Store(undated)
	})
}

// resetLocked empties the window and makes now's bucket current.
func (w *window) resetLocked(now int64) { w.ring.Reset(now) }

// addSuccess counts a success and reports whether the coarse clock is due
// for a refresh; if so, pass idx and count to dateLockFree (when the
// window has not moved) or call rotateLocked.
func (w *window) addSuccess() (idx uint32, count uint64, refresh bool) {
	idx, b := w.ring.Current()
	count = b.successes.Add(1)
	return idx, count, count%refreshEvery == 0
}

// dateLockFree records that the first count successes of bucket idx were
// counted before a read of the clock that found the window current.
func (w *window) dateLockFree(idx uint32, count uint64) {
	if b := w.ring.At(int(idx)); w.ring.IsCurrent(idx) && b.dated.Load() < count {
		b.dated.Store(count)
	}
}

// addFailureLocked counts a failure in the current bucket.
func (w *window) addFailureLocked() {
	_, b := w.ring.Current()
	b.failures.Add(1)
}

// totals returns the successes and failures in the window. Call it after
// rotateLocked so expired buckets are gone.
func (w *window) totals() (successes, failures uint64) {
	for i := range w.ring.Len() {
		b := w.ring.At(i)
		successes += b.successes.Load()
		failures += b.failures.Load()
	}
	return successes, failures
}
