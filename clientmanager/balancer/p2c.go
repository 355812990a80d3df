package balancer

// PowerOfTwo implements the power of two choices: it draws two distinct
// eligible candidates uniformly at random and picks the one with fewer calls
// in flight (the first drawn on a tie). Compared with always taking the
// least loaded node, the random pair keeps concurrent callers from herding
// onto the same node; compared with a random pick, it avoids a slow node,
// whose in-flight count grows. It needs no tuning and no clock.
type PowerOfTwo struct {
	rng   *splitMix
	nodes nodeSet
}

// NewPowerOfTwo returns a power-of-two-choices balancer. WithSeed makes its
// choices reproducible; other options are ignored.
func NewPowerOfTwo(opts ...Option) *PowerOfTwo {
	return &PowerOfTwo{rng: newSplitMix(buildOptions(opts))}
}

// Pick implements Balancer. Its cost is one atomic add and two map lookups,
// plus two passes over candidates when exclude is not nil.
func (p *PowerOfTwo) Pick(candidates []int64, exclude func(id int64) bool) (int64, bool) {
	el := eligible{candidates, exclude}
	n := el.count()
	switch n {
	case 0:
		return 0, false
	case 1:
		return el.nth(0)
	}
	i, rest := bounded(p.rng.next(), n)
	j, _ := bounded(rest, n-1)
	if j >= i {
		j++
	}
	a, b, ok := el.pair(i, j)
	if !ok {
		return 0, false // exclude changed its answers during the Pick
	}
	if p.nodes.inFlight(b) < p.nodes.inFlight(a) {
		return b, true
	}
	return a, true
}

// Start implements Balancer.
func (p *PowerOfTwo) Start(id int64) Call { return p.nodes.start(id, nil, nil) }

// Remove implements Balancer.
func (p *PowerOfTwo) Remove(id int64) { p.nodes.remove(id) }

// InFlight implements Balancer.
func (p *PowerOfTwo) InFlight(id int64) int64 { return p.nodes.inFlight(id) }
