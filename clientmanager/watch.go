package clientmanager

import (
	"context"
	"strconv"

	"github.com/coordkit/clientmanager/internal/coalesce"
)

// ClientEventType says whether a node became available or stopped being so.
type ClientEventType int

const (
	// ClientOnline: the node is available (listed, connected, not
	// stopping). A subscriber's snapshot is made of these.
	ClientOnline ClientEventType = iota + 1
	// ClientOffline: the node is no longer available (gone, suspect,
	// unreachable or stopping).
	ClientOffline
)

// String returns "online" or "offline".
func (t ClientEventType) String() string {
	switch t {
	case ClientOnline:
		return "online"
	case ClientOffline:
		return "offline"
	}
	return "ClientEventType(" + strconv.Itoa(int(t)) + ")"
}

// ClientEvent is one change of one node's availability.
type ClientEvent struct {
	Type   ClientEventType
	Client *Client
}

// WatchClients returns a channel that first receives a ClientOnline for
// every available node of role, then each change. Changes a slow reader
// has not taken yet coalesce to each node's latest state (an Online then
// Offline it never saw is nothing; a new process is an Online with the
// new Client, a re-registration of the same process is nothing), in the order of their latest change; a slow reader never
// delays the registry or other subscribers. The channel is closed when ctx
// ends or the manager is closed. role need not be a dependency yet.
func (m *Manager) WatchClients(ctx context.Context, role string) <-chan ClientEvent {
	s := newWatchSub()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		close(s.out)
		return s.out
	}
	m.wg.Add(1)
	m.mu.Unlock()
	m.reg.subscribe(role, s)
	go func() {
		defer m.wg.Done()
		defer m.reg.unsubscribe(role, s)
		s.pump(ctx, m.ctx.Done())
	}()
	return s.out
}

// watchSub is one WatchClients call: a coalescing queue filled by the
// registry and a pump goroutine that drains it into out.
type watchSub struct {
	out chan ClientEvent
	q   *coalesce.Queue[ClientEvent]
}

func newWatchSub() *watchSub {
	return &watchSub{out: make(chan ClientEvent), q: coalesce.New[ClientEvent]()}
}

// push queues ev, replacing what is pending for the same node. It never
// blocks.
func (s *watchSub) push(ev ClientEvent) { s.q.Push(ev.Client.id, ev) }

// pump delivers until ctx or done ends, then closes out. sent is the
// Client this subscriber was last told is online, per node.
func (s *watchSub) pump(ctx context.Context, done <-chan struct{}) {
	defer close(s.out)
	sent := make(map[int64]*Client)
	coalesce.Drain(ctx, done, s.q, s.out, func(ev ClientEvent) (ClientEvent, bool) { return ev, needed(ev, sent) })
}

// needed reports whether ev tells the subscriber something new, and
// records what it now knows.
func needed(ev ClientEvent, sent map[int64]*Client) bool {
	id := ev.Client.id
	prev, seen := sent[id]
	if ev.Type == ClientOnline {
		if prev == ev.Client {
			return false
		}
		sent[id] = ev.Client
		return true
	}
	if !seen || prev != ev.Client {
		// Offline of a node it was not told about, or of a process
		// already replaced by a newer one it was told about.
		return false
	}
	delete(sent, id)
	return true
}
