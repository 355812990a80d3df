package balancer

import "sync/atomic"

// RoundRobin hands out the eligible candidates in turn. Successive picks
// over the same candidates and filter visit every eligible node once per
// round, in candidate order, so each gets an equal share. (Milvus's round
// robin walks a map, whose order Go randomises.)
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
	n := len(candidates)
	if n == 0 {
		return 0, false
	}
	seq := r.next.Add(1) - 1
	if exclude == nil {
		return candidates[seq%uint64(n)], true
	}
	eligible := 0
	for _, id := range candidates {
		if !exclude(id) {
			eligible++
		}
	}
	if eligible == 0 {
		return 0, false
	}
	k := seq % uint64(eligible)
	for _, id := range candidates {
		if exclude(id) {
			continue
		}
		if k == 0 {
			return id, true
		}
		k--
	}
	return 0, false // exclude changed its answers during the Pick
}

// Start implements Balancer.
func (r *RoundRobin) Start(id int64) Call { return r.nodes.start(id, nil, nil) }

// Remove implements Balancer.
func (r *RoundRobin) Remove(id int64) { r.nodes.remove(id) }

// InFlight implements Balancer.
func (r *RoundRobin) InFlight(id int64) int64 { return r.nodes.inFlight(id) }
