package balancer

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/jonboulle/clockwork"

	"github.com/coordkit/clientmanager/internal/ewma"
)

// node is the per-node state of a balancer. Only inflight is used by every
// policy; the rest belongs to LookAside.
type node struct {
	id       int64
	created  int64 // unix nanoseconds when first seen; 0 without a clock
	inflight atomic.Int64

	latency    ewma.EWMA    // smoothed latency, nanoseconds
	lastSample atomic.Int64 // unix nanoseconds of the last sample; 0 = none
}

// inFlight returns n's calls in flight; 0 for a nil n (a node not seen).
func (n *node) inFlight() int64 {
	if n == nil {
		return 0
	}
	return n.inflight.Load()
}

// nodeSet maps node IDs to their state. Readers load an immutable map
// through an atomic pointer; writers copy it under mu. Nodes are added once
// and removed on Remove, so writes are rare.
type nodeSet struct {
	mu sync.Mutex
	m  atomic.Pointer[map[int64]*node]
}

func (s *nodeSet) view() map[int64]*node {
	if p := s.m.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *nodeSet) get(id int64) *node {
	return s.view()[id]
}

// getOrCreate returns the state of id, creating it if needed. clock, if not
// nil, stamps the creation time.
func (s *nodeSet) getOrCreate(id int64, clock clockwork.Clock) *node {
	if n := s.get(id); n != nil {
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.view()
	if n := old[id]; n != nil {
		return n
	}
	n := &node{id: id}
	if clock != nil {
		n.created = clock.Now().UnixNano()
	}
	m := make(map[int64]*node, len(old)+1)
	maps.Copy(m, old)
	m[id] = n
	s.m.Store(&m)
	return n
}

func (s *nodeSet) remove(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.view()
	if _, ok := old[id]; !ok {
		return
	}
	m := make(map[int64]*node, len(old))
	for k, v := range old {
		if k != id {
			m[k] = v
		}
	}
	s.m.Store(&m)
}

func (s *nodeSet) inFlight(id int64) int64 { return s.get(id).inFlight() }

// start counts a call on id.
func (s *nodeSet) start(id int64, clock clockwork.Clock, obs observer) Call {
	n := s.getOrCreate(id, clock)
	n.inflight.Add(1)
	return Call{n: n, obs: obs}
}
