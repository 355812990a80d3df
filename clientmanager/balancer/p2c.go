package balancer

import "math/rand/v2"

// PowerOfTwo implements the power of two choices: it draws two distinct
// eligible candidates uniformly at random and picks the one with fewer calls
// in flight (the first drawn on a tie). Compared with always taking the
// least loaded node, the random pair keeps concurrent callers from herding
// onto the same node; compared with a random pick, it avoids a slow node,
// whose in-flight count grows. It needs no tuning and no clock.
type PowerOfTwo struct {
	rng   source
	nodes nodeSet
}

// NewPowerOfTwo returns a power-of-two-choices balancer. WithSeed makes its
// choices reproducible; other options are ignored.
func NewPowerOfTwo(opts ...Option) *PowerOfTwo {
	return &PowerOfTwo{rng: newSource(buildOptions(opts))}
}

// Pick implements Balancer. Its cost is one random draw and two atomic
// loads of in-flight counts, plus two passes over candidates when exclude
// is not nil. The counts are found by index when candidates is the slice
// of the previous Picks, else by two map lookups. A Pick on a new slice,
// or after a node was added or removed, allocates once to cache where the
// slice's counts are (see the package doc).
func (p *PowerOfTwo) Pick(candidates []int64, exclude func(id int64) bool) (int64, bool) {
	if i, ok := p.PickIndex(candidates, exclude); ok {
		return candidates[i], true
	}
	return 0, false
}

// PickIndex implements IndexPicker: it is Pick returning the index of the
// node in candidates.
func (p *PowerOfTwo) PickIndex(candidates []int64, exclude func(id int64) bool) (int, bool) {
	if exclude != nil {
		return p.pickEligible(eligible{candidates, exclude})
	}
	switch n := len(candidates); n {
	case 0:
		return 0, false
	case 1:
		return 0, true
	default:
		var x uint64 // source.next, inlined by hand: it is too large
		if p.rng.seeded == nil {
			x = rand.Uint64()
		} else {
			x = p.rng.seeded.next()
		}
		a, b := twoOf(x, n)
		return p.lessLoaded(candidates, a, b), true
	}
}

// pickEligible is PickIndex with a filter.
func (p *PowerOfTwo) pickEligible(el eligible) (int, bool) {
	n := el.count()
	switch n {
	case 0:
		return 0, false
	case 1:
		return el.nth(0)
	}
	var x uint64 // source.next, inlined by hand: it is too large
	if p.rng.seeded == nil {
		x = rand.Uint64()
	} else {
		x = p.rng.seeded.next()
	}
	a, b, ok := el.pair(twoOf(x, n))
	if !ok {
		return 0, false // exclude changed its answers during the Pick
	}
	return p.lessLoaded(el.candidates, a, b), true
}

// twoOf returns two distinct numbers in [0, n), n ≥ 2, from the random x.
func twoOf(x uint64, n int) (a, b int) {
	a, rest := bounded(x, n)
	b, _ = bounded(rest, n-1)
	if b >= a {
		b++
	}
	return a, b
}

// lessLoaded returns whichever of candidates[a] and candidates[b] has
// fewer calls in flight, a on a tie.
func (p *PowerOfTwo) lessLoaded(candidates []int64, a, b int) int {
	var na, nb *node
	if nodes := p.nodes.cached(candidates); nodes != nil {
		na, nb = nodes[a], nodes[b]
	}
	if !na.is(candidates[a]) || !nb.is(candidates[b]) {
		na, nb = p.nodes.pair(candidates, a, b)
	}
	if nb.inFlight() < na.inFlight() {
		return b
	}
	return a
}

// Start implements Balancer.
func (p *PowerOfTwo) Start(id int64) Call { return p.nodes.start(id, nil, nil) }

// Remove implements Balancer.
func (p *PowerOfTwo) Remove(id int64) { p.nodes.remove(id) }

// InFlight implements Balancer.
func (p *PowerOfTwo) InFlight(id int64) int64 { return p.nodes.inFlight(id) }
