package session

import (
	"context"
	"sync"
)

// change is the latest state of one process that a subscriber has not been
// sent yet: present with its record, or gone with its last record.
type change struct {
	present bool
	s       Session
	rev     int64
	seq     uint64 // order of arrival of the latest change
}

type queued struct {
	id  int64
	seq uint64
}

// subscriber is one Subscribe call: a coalescing queue filled by the hub
// and a delivery goroutine that drains it into out.
//
// Pending changes collapse per process to its latest state, so a slow
// reader holds one entry per process, never one per change. What is sent
// depends on what this subscriber was sent before:
//
//	latest state   sent before   event
//	present        no            Add (a pending Add then Update is one Add)
//	present        yes           Update (a pending Del then Add is one Update
//	                             with the new record, LeaseID included)
//	gone           yes           Del with the last known record
//	gone           no            nothing (an Add then Del it never saw)
//
// Processes are sent in the order of their latest change, so revisions
// never decrease along one subscriber's channel.
type subscriber struct {
	out  chan Event
	wake chan struct{} // capacity 1: something is pending

	mu      sync.Mutex
	pending map[int64]change
	order   []queued // may hold stale entries (seq older than pending's)
	seq     uint64
}

func newSubscriber(buffer int) *subscriber {
	return &subscriber{
		out:     make(chan Event, buffer),
		wake:    make(chan struct{}, 1),
		pending: make(map[int64]change),
	}
}

// push queues ev; the caller holds s.mu and signals s.wake afterwards.
func (s *subscriber) push(ev Event) {
	id := ev.Session.ServerID
	s.seq++
	s.pending[id] = change{present: ev.Type != EventDel, s: ev.Session, rev: ev.Revision, seq: s.seq}
	s.order = append(s.order, queued{id: id, seq: s.seq})
	if len(s.order) > 2*len(s.pending)+16 {
		s.compact()
	}
}

// compact drops the stale entries of order, keeping the rest in place.
func (s *subscriber) compact() {
	live := s.order[:0]
	for _, q := range s.order {
		if c, ok := s.pending[q.id]; ok && c.seq == q.seq {
			live = append(live, q)
		}
	}
	clear(s.order[len(live):])
	s.order = live
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take moves the pending changes, in order, to dst[:0] and returns it.
func (s *subscriber) take(dst []queuedChange) []queuedChange {
	dst = dst[:0]
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.order {
		if c, ok := s.pending[q.id]; ok && c.seq == q.seq {
			dst = append(dst, queuedChange{id: q.id, c: c})
		}
	}
	clear(s.pending)
	clear(s.order)
	s.order = s.order[:0]
	return dst
}

type queuedChange struct {
	id int64
	c  change
}

// deliver runs until ctx or done ends, then closes out. sent is what this
// subscriber was sent: the processes it currently sees.
func (s *subscriber) deliver(ctx context.Context, done <-chan struct{}) {
	defer close(s.out)
	sent := make(map[int64]struct{})
	var batch []queuedChange
	for {
		batch = s.take(batch)
		if len(batch) == 0 {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
		for i := range batch {
			q := &batch[i]
			ev, ok := resolve(q.id, q.c, sent)
			q.c = change{} // drop the record for the collector
			if !ok {
				continue
			}
			select {
			case s.out <- ev:
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
	}
}

// resolve turns a process's latest state into the event this subscriber
// needs, and records what it now sees.
func resolve(id int64, c change, sent map[int64]struct{}) (Event, bool) {
	_, seen := sent[id]
	switch {
	case c.present && !seen:
		sent[id] = struct{}{}
		return Event{Type: EventAdd, Session: c.s, Revision: c.rev}, true
	case c.present:
		return Event{Type: EventUpdate, Session: c.s, Revision: c.rev}, true
	case seen:
		delete(sent, id)
		return Event{Type: EventDel, Session: c.s, Revision: c.rev}, true
	}
	return Event{}, false
}
