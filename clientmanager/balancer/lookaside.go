package balancer

import "github.com/jonboulle/clockwork"

// LookAside picks the candidate with the lowest C3 score (Suresh et al.,
// "C3: Cutting Tail Latency in Cloud Data Stores via Adaptive Replica
// Selection"), the score Milvus's look-aside balancer uses, as this
// process can measure it:
//
//	score = (1 + inFlight)³ × R
//
// R is the moving average of the latency this process observed (a failed
// call counts as at least ErrorPenalty), and inFlight its count of calls
// on the node, which reacts at once to a node that slows down, before any
// average does. The cube makes a node's score climb steeply with its load.
//
// A node is trusted only when its blackout (after it is first seen) has
// passed and its latency average is fresher than CostExpiry. Untrusted
// nodes are treated as neutral: each receives at most its fair share of
// the picks, 1 in n eligible candidates, and none while it has more calls
// in flight than the average eligible candidate; the remaining picks go to
// the trusted node with the lowest score. This lets a recovering node warm
// up and be measured without its first, cold-cache or lucky samples
// drawing a flood of calls. When no candidate is trusted (say, just after
// start) the least loaded candidate wins.
//
// Ties are broken at random. A Pick visits every candidate once (a few
// atomic loads each, and a map lookup unless candidates is the slice of
// the previous Picks; see the package doc) and reads the clock once.
type LookAside struct {
	cfg   LookAsideConfig
	clock clockwork.Clock
	rng   source
	nodes nodeSet
}

// NewLookAside returns a look-aside balancer, or ErrInvalidConfig. It takes
// WithClock and WithSeed.
func NewLookAside(cfg LookAsideConfig, opts ...Option) (*LookAside, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	return &LookAside{cfg: cfg, clock: o.clock, rng: newSource(o)}, nil
}

// Pick implements Balancer.
func (l *LookAside) Pick(candidates []int64, exclude func(id int64) bool) (int64, bool) {
	if i, ok := l.PickIndex(candidates, exclude); ok {
		return candidates[i], true
	}
	return 0, false
}

// PickIndex implements IndexPicker: it is Pick returning the index of the
// node in candidates.
func (l *LookAside) PickIndex(candidates []int64, exclude func(id int64) bool) (int, bool) {
	n := len(candidates)
	if n == 0 {
		return 0, false
	}
	now := l.clock.Now().UnixNano()
	nodes := l.nodes.resolver(candidates)
	el := eligible{candidates, exclude}
	off, rest := bounded(l.rng.next(), n) // start at random: ties go anywhere

	var (
		count, untrusted int
		sumInFlight      int64
		best, least      = -1, -1
		bestScore        float64
		leastInFlight    int64
	)
	for w := el.walk(off); ; {
		i, id, ok := w.next()
		if !ok {
			break
		}
		count++
		nd := nodes.node(i, id)
		in := nd.inFlight()
		sumInFlight += in
		if least < 0 || in < leastInFlight {
			least, leastInFlight = i, in
		}
		s, trusted := l.score(nd, in, now)
		if !trusted {
			untrusted++
			continue
		}
		if best < 0 || s < bestScore {
			best, bestScore = i, s
		}
	}
	switch {
	case count == 0:
		return 0, false
	case best < 0:
		return least, true
	case untrusted == 0:
		return best, true
	}

	// Draw one eligible candidate uniformly; if it is an untrusted one no
	// busier than average, it gets this pick.
	r, _ := bounded(rest, count)
	if r >= untrusted {
		return best, true
	}
	for w := el.walk(off); ; {
		i, id, ok := w.next()
		if !ok {
			break
		}
		nd := nodes.node(i, id)
		in := nd.inFlight()
		if _, trusted := l.score(nd, in, now); trusted {
			continue
		}
		if r > 0 {
			r--
			continue
		}
		if in*int64(count) <= sumInFlight {
			return i, true
		}
		break
	}
	return best, true
}

// score returns the C3 score of nd given its in-flight count, and whether
// its latency average is trusted at now (unix nanoseconds). nd may be nil.
func (l *LookAside) score(nd *node, inFlight int64, now int64) (float64, bool) {
	if nd == nil || now-nd.created < int64(l.cfg.Blackout) {
		return 0, false
	}
	last := nd.lastSample.Load()
	if last == 0 || now-last > int64(l.cfg.CostExpiry) {
		return 0, false
	}
	// A zero latency would erase the load term; one nanosecond keeps
	// in-flight counts deciding between otherwise equal nodes. (Plain
	// comparisons: math.Max's NaN handling costs more than the rest.)
	r := nd.latency.Value()
	if r < 1 {
		r = 1
	}
	q := 1 + float64(inFlight)
	return q * q * q * r, true
}

// Start implements Balancer.
func (l *LookAside) Start(id int64) Call { return l.nodes.start(id, l.clock, l) }

// Remove implements Balancer. If the node is seen again, its blackout
// starts anew; call Remove too when a node recovers from an outage whose
// metrics should be forgotten.
func (l *LookAside) Remove(id int64) { l.nodes.remove(id) }

// InFlight implements Balancer.
func (l *LookAside) InFlight(id int64) int64 { return l.nodes.inFlight(id) }
