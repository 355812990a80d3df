package debughttp

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/startup"
)

// recorder keeps the recent events in a ring and the last seen state of
// every node, to turn successive Status reads into changes. Safe for
// concurrent use.
type recorder struct {
	mu    sync.Mutex
	ring  []Event // ring[(next-1) mod len] is the newest
	next  int
	n     int
	nodes map[nodeKey]nodeSeen
	state string // the Runner's state last seen; "" before
}

type nodeKey struct {
	role string
	id   int64
}

type nodeSeen struct {
	state, breaker string
}

func newRecorder(size int) *recorder {
	return &recorder{ring: make([]Event, size), nodes: make(map[nodeKey]nodeSeen)}
}

// add records ev as the newest event. The caller holds mu.
func (r *recorder) add(ev Event) {
	r.ring[r.next] = ev
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
}

// transition records one of the Runner's transitions.
func (r *recorder) transition(role string, tr startup.Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := Event{Time: tr.At, Role: role, Kind: "process", From: tr.From.String(), To: tr.To.String(), Detail: tr.Reason}
	if tr.From == tr.To {
		ev.From = "" // a subscription's first transition: where it stands
	}
	r.state = tr.To.String()
	r.add(ev)
}

// runnerState records a change of the Runner's state seen by polling, for
// a Runner that cannot report its transitions.
func (r *recorder) runnerState(at time.Time, role string, s startup.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if to := s.String(); to != r.state {
		r.add(Event{Time: at, Role: role, Kind: "process", From: r.state, To: to})
		r.state = to
	}
}

// observe records the differences between st and the previous read: nodes
// that appeared, changed state or breaker state, or are no longer listed.
func (r *recorder) observe(at time.Time, st []clientmanager.NodeStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[nodeKey]bool, len(st))
	for _, n := range st {
		k := nodeKey{n.Role, n.NodeID}
		seen[k] = true
		now := nodeSeen{state: n.State.String(), breaker: n.Breaker.String()}
		prev, known := r.nodes[k]
		r.nodes[k] = now
		switch {
		case !known:
			r.add(Event{Time: at, Role: n.Role, NodeID: n.NodeID, Kind: "node", To: now.state, Detail: n.LastError})
		case prev.state != now.state:
			r.add(Event{Time: at, Role: n.Role, NodeID: n.NodeID, Kind: "node", From: prev.state, To: now.state, Detail: n.LastError})
		}
		if known && prev.breaker != now.breaker {
			r.add(Event{Time: at, Role: n.Role, NodeID: n.NodeID, Kind: "breaker", From: prev.breaker, To: now.breaker,
				Detail: n.LastFailureError})
		}
	}
	var gone []nodeKey
	for k := range r.nodes {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, func(a, b nodeKey) int { return cmp.Or(cmp.Compare(a.role, b.role), cmp.Compare(a.id, b.id)) })
	for _, k := range gone {
		r.add(Event{Time: at, Role: k.role, NodeID: k.id, Kind: "node", From: r.nodes[k].state, To: "removed"})
		delete(r.nodes, k)
	}
}

// events returns the recorded events, newest first.
func (r *recorder) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Event, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.ring[(r.next-i+len(r.ring))%len(r.ring)])
	}
	return out
}
