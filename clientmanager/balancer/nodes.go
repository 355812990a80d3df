package balancer

import (
	"maps"
	"sync"
	"sync/atomic"
	"unsafe"

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
//
// A Pick looks its candidates up through resolver, which caches the
// resolution of the last candidates slice seen twice in a row: callers
// such as the manager pass the same immutable slice on every Pick until
// the membership changes, and then a Pick reads its nodes by index instead
// of hashing IDs.
type nodeSet struct {
	mu sync.Mutex
	m  atomic.Pointer[map[int64]*node]

	resolved atomic.Pointer[resolution]
	missed   atomic.Uintptr // the key of the last slice that missed
	misses   atomic.Uint32  // how many times in a row it missed
}

// replaceAfter is how many times in a row a slice misses a resolution that
// is still valid, of another slice, before it replaces it. Callers that
// alternate between slices thus allocate once per replaceAfter picks at
// most, not on every pick.
const replaceAfter = 16

// resolution is one candidates slice resolved to its nodes in one map.
type resolution struct {
	key   uintptr          // the address of candidates[0]
	m     *map[int64]*node // the map the nodes were looked up in
	nodes []*node          // aligned with candidates; nil: not in m
}

// cached returns the cached resolution of candidates, nil if it has none
// for the current map. Its entries may be stale (see resolver.node).
func (s *nodeSet) cached(candidates []int64) []*node {
	r := s.resolved.Load()
	if r == nil || r.key != sliceKey(candidates) || len(r.nodes) != len(candidates) || r.m != s.m.Load() {
		return nil
	}
	return r.nodes
}

// is reports whether n is the state of node id.
func (n *node) is(id int64) bool { return n != nil && n.id == id }

// pair returns the states of candidates[a] and candidates[b]; nil for a
// node not seen. It is the lookup after a miss of cached (see
// PowerOfTwo.lessLoaded, which tries that first): see resolver.
func (s *nodeSet) pair(candidates []int64, a, b int) (*node, *node) {
	r := s.resolver(candidates)
	return r.node(a, candidates[a]), r.node(b, candidates[b])
}

// resolver looks up the nodes of one Pick's candidates.
type resolver struct {
	m     map[int64]*node
	nodes []*node // a resolution of candidates in m; may be stale or nil
}

// node returns the state of id, candidates[i]; nil if not seen. A cached
// entry is used only if it is the node of id: the slice may have been
// changed in place since it was resolved (its address is only a key), and
// the map is the one it was resolved in, so a node of id there is current.
func (r resolver) node(i int, id int64) *node {
	if i < len(r.nodes) && r.nodes[i].is(id) {
		return r.nodes[i]
	}
	return r.m[id]
}

// resolver returns the resolver of candidates, non-empty. The cached
// resolution is used if it is of a slice at the same address and length
// and of the current map: a Start that adds a node, or a Remove, replaces
// the map and so invalidates the resolution. A slice that misses twice in
// a row (replaceAfter times while the resolution of another slice is
// valid) is resolved afresh, the only case that allocates: a caller that
// passes a new slice on each Pick does not allocate, and reads its nodes
// from the map.
func (s *nodeSet) resolver(candidates []int64) resolver {
	mp := s.m.Load()
	r := s.resolved.Load()
	if r != nil && r.m == mp && r.key == sliceKey(candidates) && len(r.nodes) == len(candidates) {
		return resolver{m: *mp, nodes: r.nodes}
	}
	return s.resolve(candidates, mp, r)
}

// sliceKey identifies a slice by its address. It is only compared, never
// turned back into a pointer, so it does not keep the slice alive.
func sliceKey(candidates []int64) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(candidates)))
}

// resolve is resolver's miss: r, the cached resolution, is not of
// candidates in mp, the current map.
func (s *nodeSet) resolve(candidates []int64, mp *map[int64]*node, r *resolution) resolver {
	if mp == nil {
		return resolver{} // no node seen
	}
	key := sliceKey(candidates)
	if s.missed.Load() != key {
		s.missed.Store(key)
		s.misses.Store(1)
		return resolver{m: *mp}
	}
	if n := s.misses.Add(1); r != nil && r.m == mp && n < replaceAfter {
		return resolver{m: *mp}
	}
	m := *mp
	nodes := make([]*node, len(candidates))
	for i, id := range candidates {
		nodes[i] = m[id]
	}
	s.resolved.Store(&resolution{key: key, m: mp, nodes: nodes})
	return resolver{m: m, nodes: nodes}
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
