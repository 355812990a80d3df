package session

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
)

// hub fans a watcher's events out to its subscribers. publish never waits
// for a subscriber: it merges the events into each subscriber's coalescing
// queue and wakes its delivery goroutine. The hub also keeps the visible
// set, the snapshot a new subscriber starts with.
type hub struct {
	buffer int
	done   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	current map[int64]Event // visible processes: record and revision of their last change
	subs    map[*subscriber]struct{}
}

func newHub(buffer int) *hub {
	return &hub{
		buffer:  buffer,
		done:    make(chan struct{}),
		current: make(map[int64]Event),
		subs:    make(map[*subscriber]struct{}),
	}
}

// publish applies evs, in order, to the visible set and to every
// subscriber's queue.
func (h *hub) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, ev := range evs {
		if ev.Type == EventDel {
			delete(h.current, ev.Session.ServerID)
		} else {
			h.current[ev.Session.ServerID] = ev
		}
	}
	for s := range h.subs {
		for _, ev := range evs {
			s.push(ev)
		}
	}
}

// subscribe starts a subscriber whose queue holds the visible set as Adds.
// After close, or with ctx ended, the channel is closed without events.
func (h *hub) subscribe(ctx context.Context) <-chan Event {
	s := newSubscriber(h.buffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || ctx.Err() != nil {
		close(s.out)
		return s.out
	}
	for _, ev := range h.snapshot() {
		s.push(ev)
	}
	h.subs[s] = struct{}{}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		s.deliver(ctx, h.done)
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}()
	return s.out
}

// snapshot returns the visible set as Adds in the order of their
// revisions (then ServerIDs), so that revisions never decrease along a
// subscriber's channel; the caller holds h.mu.
func (h *hub) snapshot() []Event {
	evs := make([]Event, 0, len(h.current))
	for _, ev := range h.current {
		ev.Type = EventAdd
		evs = append(evs, ev)
	}
	slices.SortFunc(evs, func(a, b Event) int {
		if c := cmp.Compare(a.Revision, b.Revision); c != 0 {
			return c
		}
		return cmp.Compare(a.Session.ServerID, b.Session.ServerID)
	})
	return evs
}

// sessions returns the visible set sorted by ServerID.
func (h *hub) sessions() []Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Session, 0, len(h.current))
	for _, id := range slices.Sorted(maps.Keys(h.current)) {
		out = append(out, h.current[id].Session)
	}
	return out
}

// close stops every delivery goroutine and waits for them; their channels
// are closed. It is safe to call more than once.
func (h *hub) close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	h.wg.Wait()
}
