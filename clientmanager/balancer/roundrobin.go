package balancer

import "sync/atomic"

// RoundRobin hands out the eligible candidates in turn. Successive picks
// over the same candidates and filter visit every eligible node once per
// round, in candidate order, so each gets an equal share. (Milvus's round
// robin walks a map, whose order Go randomises.) Only a Pick that returns a
// node takes a turn: Peek, and a Pick that finds no eligible candidate,
// leave the turn where it is.
type RoundRobin struct {
	next  atomic.Uint64
	nodes nodeSet
}

// NewRoundRobin returns a round-robin balancer.
func NewRoundRobin() *RoundRobin {
	return &RoundRobin{}
}

// Pick implements Balancer. Its cost is one atomic add, plus two passes
// over candidates when exclude is not nil.
func (r *RoundRobin) Pick(candidates []int64, exclude func(id int64) bool) (int64, bool) {
	if i, ok := r.PickIndex(candidates, exclude); ok {
		return candidates[i], true
	}
	return 0, false
}

// PickIndex implements IndexPicker: it is Pick returning the index of the
// node in candidates.
func (r *RoundRobin) PickIndex(candidates []int64, exclude func(id int64) bool) (int, bool) {
	el := eligible{candidates, exclude}
	n := el.count()
	if n == 0 {
		return 0, false
	}
	return el.nth(int((r.next.Add(1) - 1) % uint64(n)))
}

// Peek implements Peeker: it returns the node the next Pick with the same
// arguments would return, without taking the turn. Its cost is one atomic
// load, plus two passes over candidates when exclude is not nil.
func (r *RoundRobin) Peek(candidates []int64, exclude func(id int64) bool) (int64, bool) {
	el := eligible{candidates, exclude}
	n := el.count()
	if n == 0 {
		return 0, false
	}
	if i, ok := el.nth(int(r.next.Load() % uint64(n))); ok {
		return candidates[i], true
	}
	return 0, false
}

// Start implements Balancer.
func (r *RoundRobin) Start(id int64) Call { return r.nodes.start(id, nil, nil) }

// Remove implements Balancer.
func (r *RoundRobin) Remove(id int64) { r.nodes.remove(id) }

// InFlight implements Balancer.
func (r *RoundRobin) InFlight(id int64) int64 { return r.nodes.inFlight(id) }
