package startup

import (
	"context"
	"sync"
)

// subscriber is one Subscribe call: an unbounded queue filled by the state
// machine (never blocking it) and drained in order by its own pump
// goroutine into the subscriber's channel.
type subscriber struct {
	mu    sync.Mutex
	queue []Transition
	wake  chan struct{} // capacity 1: "the queue is not empty"
}

func newSubscriber() *subscriber { return &subscriber{wake: make(chan struct{}, 1)} }

// push appends t; it never blocks.
func (s *subscriber) push(t Transition) {
	s.mu.Lock()
	s.queue = append(s.queue, t)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns the queued changes and gives buf (the previous batch) back
// to the queue, so the two slices alternate without allocating.
func (s *subscriber) take(buf []Transition) []Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = buf[:0]
	return q
}

// pump delivers every queued change in order until it has delivered
// StateStopped, ctx ends or done is closed.
func (s *subscriber) pump(ctx context.Context, done <-chan struct{}, out chan<- Transition) {
	var batch []Transition
	for {
		batch = s.take(batch)
		for _, t := range batch {
			select {
			case out <- t:
			case <-ctx.Done():
				return
			case <-done:
				return
			}
			if t.To == StateStopped {
				return
			}
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		case <-done:
			return
		}
	}
}
