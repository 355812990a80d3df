package session

import (
	"context"

	"github.com/coordkit/clientmanager/internal/coalesce"
)

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
	out chan Event
	q   *coalesce.Queue[Event]
}

func newSubscriber(buffer int) *subscriber {
	return &subscriber{out: make(chan Event, buffer), q: coalesce.New[Event]()}
}

// push queues ev, replacing what is pending for the same process. It never
// blocks.
func (s *subscriber) push(ev Event) { s.q.Push(ev.Session.ServerID, ev) }

// deliver runs until ctx or done ends, then closes out. sent is what this
// subscriber was sent: the processes it currently sees.
func (s *subscriber) deliver(ctx context.Context, done <-chan struct{}) {
	defer close(s.out)
	sent := make(map[int64]struct{})
	coalesce.Drain(ctx, done, s.q, s.out, func(ev Event) (Event, bool) { return resolve(ev, sent) })
}

// resolve turns a process's latest state into the event this subscriber
// needs, and records what it now sees.
func resolve(ev Event, sent map[int64]struct{}) (Event, bool) {
	id := ev.Session.ServerID
	_, seen := sent[id]
	present := ev.Type != EventDel
	switch {
	case present && !seen:
		sent[id] = struct{}{}
		ev.Type = EventAdd
		return ev, true
	case present:
		ev.Type = EventUpdate
		return ev, true
	case seen:
		delete(sent, id)
		return ev, true
	}
	return Event{}, false
}
