package clientmanager

import (
	"cmp"
	"slices"

	"github.com/coordkit/clientmanager/clientmanager/breaker"
)

// Verdicts of a routing plan on one candidate.
const (
	// routeBreaker: the node's breaker decides (closed, or half-open: the
	// call is a probe if a permit is free).
	routeBreaker uint8 = iota
	// routeBypass: past the ejection cap, or in panic: the node is called
	// even when its breaker refuses.
	routeBypass
	// routeEjected: its breaker is open; the node is not picked.
	routeEjected
)

// routePlan holds the verdict on each available node of a role for one
// attempt, aligned with roleView.ids. A nil plan means every breaker is
// closed: every node is routeBreaker.
type routePlan []uint8

// planRoute decides which available nodes of v may take the next attempt,
// reading each breaker's State (which turns an open breaker half-open
// once its break is over). It returns ErrAllNodesUnhealthy when no node
// may be called. The rules (the Route step of Invoke):
//
//   - while some node's breaker is closed, the nodes whose breaker is open
//     or half-open are ejected (half-open ones still take probes), but at
//     most ⌊n × MaxEjectionPercent / 100⌋ of the n nodes and never all of
//     them; past that cap the nodes whose breakers opened earliest are
//     called anyway;
//   - when no breaker is closed, half-open nodes take probes only and open
//     ones nothing, so with none half-open the role is all unhealthy;
//     PanicMode instead calls every node.
//
// When every breaker is closed (the role counts no breaker out of the
// closed state) it returns a nil plan without reading them.
func (m *Manager) planRoute(v *roleView) (routePlan, error) {
	if v.shared == nil || v.shared.notClosed.Load() == 0 {
		return nil, nil
	}
	n := len(v.clients)
	plan := make(routePlan, n)
	var down []int // indices whose breaker is not closed
	halfOpen := 0
	for i, c := range v.clients {
		switch c.brk.State() {
		case breaker.StateClosed:
			continue
		case breaker.StateHalfOpen:
			halfOpen++
		default:
			plan[i] = routeEjected
		}
		down = append(down, i)
	}
	switch {
	case len(down) == 0:
		return nil, nil
	case len(down) == n && m.cfg.PanicMode:
		for i := range plan {
			plan[i] = routeBypass
		}
		return plan, nil
	case len(down) == n && halfOpen == 0:
		return nil, ErrAllNodesUnhealthy
	case len(down) == n:
		return plan, nil // probes only
	}
	limit := min(n*m.cfg.MaxEjectionPercent/100, n-1)
	if surplus := len(down) - limit; surplus > 0 {
		slices.SortFunc(down, func(a, b int) int {
			return cmp.Or(cmp.Compare(v.clients[a].health.openedAt.Load(), v.clients[b].health.openedAt.Load()), cmp.Compare(a, b))
		})
		for _, i := range down[:surplus] {
			plan[i] = routeBypass
		}
	}
	return plan, nil
}

// verdict returns the plan's verdict on id.
func (p routePlan) verdict(v *roleView, id int64) uint8 {
	if p == nil {
		return routeBreaker
	}
	if i, ok := slices.BinarySearch(v.ids, id); ok {
		return p[i]
	}
	return routeEjected
}

// tries is what one Invoke has tried and learned.
type tries struct {
	ids     []int64 // nodes attempted
	gone    []int64 // nodes not to try again
	refused []int64 // nodes whose breaker or bulkhead turned this call away

	view    *roleView // the snapshot the plan is for; nil for InvokeNode
	plan    routePlan
	planned bool // a route was planned: the next one loads the snapshot

	busy      []*Client // nodes whose bulkhead had no free slot, in this choice
	queued    bool      // the call has queued at a bulkhead once
	unhealthy bool      // a breaker turned the call away, or the plan ejected every node
}

func (t *tries) pristine() bool {
	return len(t.ids) == 0 && len(t.gone) == 0 && len(t.refused) == 0 && t.plan == nil
}

// copied returns a copy of t for the exclusion functions a balancer is
// given: they escape, and so would t, which the first attempt of every
// call keeps on its stack.
func (t *tries) copied() *tries {
	c := *t
	return &c
}

// skip reports whether id may not be picked at all.
func (t *tries) skip(id int64) bool {
	return slices.Contains(t.gone, id) || slices.Contains(t.refused, id) ||
		(t.view != nil && t.plan.verdict(t.view, id) == routeEjected)
}

// skipTried is skip, and also the nodes already attempted.
func (t *tries) skipTried(id int64) bool { return t.skip(id) || slices.Contains(t.ids, id) }

// bypass reports whether id is called even if its breaker refuses.
func (t *tries) bypass(id int64) bool {
	return t.view != nil && t.plan.verdict(t.view, id) == routeBypass
}
