// Package coalesce is the delivery queue behind every subscription of the
// module: changes keyed by node collapse to each node's latest value, so a
// slow reader costs memory per node, never per change, and a writer never
// blocks on it.
package coalesce

import (
	"context"
	"sync"
)

// Queue holds the latest pending value per key, in the order of each key's
// latest change. Push never blocks; Take empties it.
type Queue[V any] struct {
	wake chan struct{} // capacity 1: something is pending

	mu      sync.Mutex
	pending map[int64]entry[V]
	order   []ticket // may hold stale tickets (seq older than pending's)
	seq     uint64
}

type entry[V any] struct {
	v   V
	seq uint64
}

type ticket struct {
	key int64
	seq uint64
}

// New returns an empty queue.
func New[V any]() *Queue[V] {
	return &Queue[V]{wake: make(chan struct{}, 1), pending: make(map[int64]entry[V])}
}

// Push replaces what is pending for key with v and moves key to the back.
func (q *Queue[V]) Push(key int64, v V) {
	q.mu.Lock()
	q.seq++
	q.pending[key] = entry[V]{v: v, seq: q.seq}
	q.order = append(q.order, ticket{key: key, seq: q.seq})
	if len(q.order) > 2*len(q.pending)+16 {
		q.compact()
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// compact drops stale tickets, keeping the live ones in place.
func (q *Queue[V]) compact() {
	live := q.order[:0]
	for _, t := range q.order {
		if e, ok := q.pending[t.key]; ok && e.seq == t.seq {
			live = append(live, t)
		}
	}
	q.order = live
}

// Len returns how many keys have a value pending.
func (q *Queue[V]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Take moves the pending values, in the order of their latest change, to
// dst[:0] and returns it.
func (q *Queue[V]) Take(dst []V) []V {
	dst = dst[:0]
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, t := range q.order {
		if e, ok := q.pending[t.key]; ok && e.seq == t.seq {
			dst = append(dst, e.v)
		}
	}
	clear(q.pending)
	q.order = q.order[:0]
	return dst
}

// Drain sends q's values to out until ctx or done ends. Each value goes
// through next, which returns what to send and whether to send anything;
// next runs on Drain's goroutine only, so it may keep state unlocked.
// Every send waits in a select with ctx and done.
func Drain[V, E any](ctx context.Context, done <-chan struct{}, q *Queue[V], out chan<- E, next func(V) (E, bool)) {
	var batch []V
	var zero V
	for {
		batch = q.Take(batch)
		if len(batch) == 0 {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
		for i, v := range batch {
			batch[i] = zero // let the collector have it once sent
			ev, ok := next(v)
			if !ok {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}
}
