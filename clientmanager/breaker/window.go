package breaker

import (
	"sync/atomic"
	"time"
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

func (b *bucket) clear() {
	b.successes.Store(0)
	b.failures.Store(0)
	b.dated.Store(0)
}

// window is a ring of buckets covering the last len(buckets) × width of
// time. Successes are added lock-free to buckets[cur]; everything else
// (rotation, failures, totals) happens under the breaker's lock.
//
// buckets[cur] is chosen by a coarse clock, read only now and then, so the
// successes counted since the last read may be much younger than the
// bucket (the first calls after an idle period land in a bucket that
// expired long ago). A rotation therefore carries them into the new
// current bucket: they are dated at the read that finds the window moved.
type window struct {
	width   int64 // bucket width in ns
	buckets []bucket
	cur     atomic.Uint32 // index of the bucket receiving results
	epoch   atomic.Int64  // bucket number (time / width) of buckets[cur]
}

func newWindow(length time.Duration, n int) window {
	return window{width: int64(length) / int64(n), buckets: make([]bucket, n)}
}

// due reports whether the coarse clock is behind now, so a rotation
// (which needs the lock) is worth trying.
func (w *window) due(now int64) bool {
	return now/w.width > w.epoch.Load()
}

// rotateLocked moves the current bucket to the one of now, clearing the
// buckets that expire on the way and carrying the successes counted since
// the clock was last read into the new bucket. Time never moves the window
// backwards. Every success counted so far is dated afterwards.
func (w *window) rotateLocked(now int64) {
	e := now / w.width
	old := w.epoch.Load()
	cur := &w.buckets[w.cur.Load()]
	if e <= old {
		cur.dated.Store(cur.successes.Load())
		return
	}
	s := cur.successes.Load()
	undated := s - min(s, cur.dated.Load())
	cur.successes.Add(-undated)
	n := int64(len(w.buckets))
	steps := min(e-old, n)
	// Fill the new bucket before publishing its index, so a success that
	// sees the new index lands in a clean bucket that keeps the carried
	// ones.
	for i := e - steps + 1; i <= e; i++ {
		w.buckets[i%n].clear()
	}
	next := &w.buckets[e%n]
	next.successes.Add(undated)
	next.dated.Store(undated)
	w.epoch.Store(e)
	w.cur.Store(uint32(e % n))
}

// resetLocked empties the window and makes now's bucket current.
func (w *window) resetLocked(now int64) {
	for i := range w.buckets {
		w.buckets[i].clear()
	}
	e := now / w.width
	w.epoch.Store(e)
	w.cur.Store(uint32(e % int64(len(w.buckets))))
}

// addSuccess counts a success and reports whether the coarse clock is due
// for a refresh; if so, pass idx and count to dateLockFree (when the
// window has not moved) or call rotateLocked.
func (w *window) addSuccess() (idx uint32, count uint64, refresh bool) {
	idx = w.cur.Load()
	count = w.buckets[idx].successes.Add(1)
	return idx, count, count%refreshEvery == 0
}

// dateLockFree records that the first count successes of buckets[idx]
// were counted before a read of the clock that found the window current.
func (w *window) dateLockFree(idx uint32, count uint64) {
	if b := &w.buckets[idx]; w.cur.Load() == idx && b.dated.Load() < count {
		b.dated.Store(count)
	}
}

// addFailureLocked counts a failure in the current bucket.
func (w *window) addFailureLocked() {
	w.buckets[w.cur.Load()].failures.Add(1)
}

// totals returns the successes and failures in the window. Call it after
// rotateLocked so expired buckets are gone.
func (w *window) totals() (successes, failures uint64) {
	for i := range w.buckets {
		successes += w.buckets[i].successes.Load()
		failures += w.buckets[i].failures.Load()
	}
	return successes, failures
}
