package breaker

import "go.uber.org/zap"

// event is one transition waiting to be delivered to the listeners.
type event struct {
	from, to State
	opens    int // consecutive openings at the time
}

// drain delivers queued events outside the lock. Transitions queue their
// event under the lock; whichever goroutine finds no drainer at work
// becomes the drainer and delivers events one at a time, in queue order,
// until the queue is empty. Others return at once, so a listener that
// calls back into the breaker (and causes a transition) does not deadlock:
// its event is delivered after the current one.
func (b *Breaker) drain() {
	b.mu.Lock()
	if b.draining {
		b.mu.Unlock()
		return
	}
	b.draining = true
	for len(b.events) > 0 {
		ev := b.events[0]
		b.events = b.events[1:]
		if len(b.events) == 0 {
			b.events = nil // let the array go; transitions are rare
		}
		b.mu.Unlock()
		b.deliver(ev)
		b.mu.Lock()
	}
	b.draining = false
	b.mu.Unlock()
}

// deliver logs ev and calls the listeners. Should a listener panic, the
// drainer role is released so later events are still delivered.
func (b *Breaker) deliver(ev event) {
	delivered := false
	defer func() {
		if !delivered {
			b.mu.Lock()
			b.draining = false
			b.mu.Unlock()
		}
	}()
	b.log.Info("circuit breaker state changed",
		zap.Stringer("from", ev.from), zap.Stringer("to", ev.to), zap.Int("consecutive_opens", ev.opens))
	for _, f := range b.lis {
		f(ev.from, ev.to)
	}
	delivered = true
}
