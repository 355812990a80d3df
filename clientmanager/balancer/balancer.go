package balancer

import "time"

// Balancer chooses one node among candidates and tracks the calls in flight
// on each node. Implementations are safe for concurrent use.
type Balancer interface {
	// Pick returns one of candidates, skipping each ID for which exclude
	// returns true; exclude may be nil, may be called more than once per
	// candidate and must answer consistently during one Pick. candidates
	// should be in a stable order (ascending ID); Pick does not modify it.
	// Pick does not allocate, but for a policy's cache of the last slice
	// (see the package doc). ok is false when no candidate is eligible.
	Pick(candidates []int64, exclude func(id int64) bool) (id int64, ok bool)

	// Start records that a call to node id begins. The returned Call's Done
	// must be called exactly once, when the call ends.
	Start(id int64) Call

	// Remove forgets node id; call it when the node leaves. Calls still in
	// flight on the node end on the forgotten state, so they cannot disturb
	// the counts of the node if it comes back, which starts afresh.
	Remove(id int64)

	// InFlight returns the number of calls started on node id and not done.
	InFlight(id int64) int64
}

// Peeker is implemented by balancers whose Pick takes a turn that decides
// later picks (RoundRobin). Peek returns what Pick would return now with
// the same arguments, without taking the turn, so a caller that only asks
// whether a node would be found (is there somewhere to retry?) does not
// make the next Pick skip one. Use the package's Peek function, which
// works with every Balancer.
type Peeker interface {
	Peek(candidates []int64, exclude func(id int64) bool) (id int64, ok bool)
}

// Peek returns the node b would pick from candidates, without taking a
// turn: b's Peek when b is a Peeker, else b.Pick, whose policies (random
// draws, scores) keep no turn to take. It allocates only as Pick does.
func Peek(b Balancer, candidates []int64, exclude func(id int64) bool) (id int64, ok bool) {
	if p, isPeeker := b.(Peeker); isPeeker {
		return p.Peek(candidates, exclude)
	}
	return b.Pick(candidates, exclude)
}

// IndexPicker is implemented by balancers that can say where in
// candidates the node they pick is (every policy of this package). PickIndex
// is Pick returning the index in candidates of the node Pick would return,
// taking the same turn and drawing the same randomness as Pick: a caller
// that keeps its nodes in a slice aligned with candidates takes the node at
// that index without looking its ID up. It allocates only as Pick does.
type IndexPicker interface {
	PickIndex(candidates []int64, exclude func(id int64) bool) (index int, ok bool)
}

// Call is one call started with Balancer.Start. The zero Call does nothing.
type Call struct {
	n   *node
	obs observer // nil unless the policy learns from outcomes
}

// observer learns from the outcome of a call (LookAside).
type observer interface {
	observe(n *node, latency time.Duration, err error)
}

// NodeID returns the node the call went to.
func (c Call) NodeID() int64 {
	if c.n == nil {
		return 0
	}
	return c.n.id
}

// Done records the end of the call: latency is how long it took as seen by
// the caller, err its outcome. Pass a nil err for success, and for outcomes
// that say nothing about the node; a canceled context (context.Canceled or
// codes.Canceled) is recognised and ignored. Call Done exactly once.
func (c Call) Done(latency time.Duration, err error) {
	if c.n == nil {
		return
	}
	if c.obs != nil {
		c.obs.observe(c.n, latency, err)
	}
	c.n.inflight.Add(-1)
}

var (
	_ Balancer = (*RoundRobin)(nil)
	_ Balancer = (*PowerOfTwo)(nil)
	_ Balancer = (*LookAside)(nil)
	_ Peeker   = (*RoundRobin)(nil)

	_ IndexPicker = (*RoundRobin)(nil)
	_ IndexPicker = (*PowerOfTwo)(nil)
	_ IndexPicker = (*LookAside)(nil)
)
