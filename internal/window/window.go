// Package window is the sliding time window of the circuit breaker and
// the retry budget: a ring of buckets, each counting one slice of the
// window's length, moved on by a clock the caller reads.
//
// The ring keeps the position (which bucket is current, for which slice
// of time); the buckets keep the counts, in whatever form their owner
// needs (lock-free counters, counters under the owner's lock). Moving the
// window empties the buckets whose slice has left it.
package window

import (
	"sync/atomic"
	"time"
)

// Bucket is the constraint on what a Ring holds: a pointer to a bucket
// that Reset empties.
type Bucket[B any] interface {
	*B
	Reset()
}

// Ring is a ring of buckets covering the last Len() × width of time;
// slot n is the time [n × width, (n+1) × width) and its bucket is
// Bucket(n mod Len()). Times are nanoseconds on the owner's clock, from
// any origin at or before the first use.
//
// Reading the position (Current, Due, Epoch) and the buckets is
// lock-free. Advance and Reset move the position: the owner serialises
// them, under its lock.
type Ring[B any, P Bucket[B]] struct {
	width   int64 // slot width, ns
	buckets []B
	cur     atomic.Uint32 // index of the current bucket
	epoch   atomic.Int64  // slot of the current bucket
}

// New returns a ring of n buckets spanning length, with slot 0 current.
// length must be at least n nanoseconds and n positive.
func New[B any, P Bucket[B]](length time.Duration, n int) Ring[B, P] {
	return Ring[B, P]{width: int64(length) / int64(n), buckets: make([]B, n)}
}

// Len returns the number of buckets.
func (r *Ring[B, P]) Len() int { return len(r.buckets) }

// Width returns the time one bucket covers, in nanoseconds.
func (r *Ring[B, P]) Width() int64 { return r.width }

// Epoch returns the slot of the current bucket.
func (r *Ring[B, P]) Epoch() int64 { return r.epoch.Load() }

// Due reports whether now lies in a later slot than the current bucket's,
// so Advance would move the window.
func (r *Ring[B, P]) Due(now int64) bool { return now/r.width > r.epoch.Load() }

// Current returns the current bucket and its index.
func (r *Ring[B, P]) Current() (idx uint32, b *B) {
	idx = r.cur.Load()
	return idx, &r.buckets[idx]
}

// IsCurrent reports whether idx is still the current bucket's index.
func (r *Ring[B, P]) IsCurrent(idx uint32) bool { return r.cur.Load() == idx }

// At returns the bucket of index idx, in [0, Len()).
func (r *Ring[B, P]) At(idx int) *B { return &r.buckets[idx] }

// Advance makes the bucket of now's slot current, emptying the buckets
// whose slots leave the window on the way (every bucket, after a pause of
// a window or more). fill, if not nil, is given the new current bucket
// once it is empty and before it is published, so a reader that sees the
// new position finds what fill put there. Advance reports whether the
// window moved; it never moves backwards. The caller serialises Advance
// and Reset.
func (r *Ring[B, P]) Advance(now int64, fill func(*B)) bool {
	e := now / r.width
	old := r.epoch.Load()
	if e <= old {
		return false
	}
	n := int64(len(r.buckets))
	steps := min(e-old, n)
	for i := e - steps + 1; i <= e; i++ {
		P(&r.buckets[i%n]).Reset()
	}
	if fill != nil {
		fill(&r.buckets[e%n])
	}
	r.epoch.Store(e)
	r.cur.Store(uint32(e % n))
	return true
}

// Reset empties every bucket and makes now's slot current, whether it is
// ahead of the current one or not. The caller serialises Advance and
// Reset.
func (r *Ring[B, P]) Reset(now int64) {
	for i := range r.buckets {
		P(&r.buckets[i]).Reset()
	}
	e := now / r.width
	r.epoch.Store(e)
	r.cur.Store(uint32(e % int64(len(r.buckets))))
}
