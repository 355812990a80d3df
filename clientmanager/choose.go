package clientmanager

import (
	"context"
	"slices"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
)

// peek returns the node the next attempt would go to, and whether it was
// tried before, without asking its breaker or bulkhead; nil when there is
// none.
func (m *Manager) peek(tg target, t *tries) (*Client, bool) {
	if err := m.loadRoute(tg, t); err != nil {
		return nil, false
	}
	return m.candidate(tg, t, true)
}

// loadRoute loads the current snapshot of the role and plans the route on it.
func (m *Manager) loadRoute(tg target, t *tries) error {
	if tg.node != 0 {
		return nil
	}
	v := tg.view
	if v == nil || t.planned {
		v = m.reg.load().role(tg.role) // a later plan: the current snapshot
	}
	t.planned = true
	if v == nil || len(v.ids) == 0 {
		t.view, t.plan = nil, nil
		if v != nil && v.unavailable != nil {
			return v.unavailable
		}
		return unavailableForRole(tg.role)
	}
	plan, err := m.planRoute(v)
	t.view, t.plan = v, plan
	if err != nil {
		t.unhealthy = true
		return &NodeError{Role: tg.role, Err: err}
	}
	return nil
}

// candidate returns the next node for tg: one not tried yet, or else one tried
// before (same), or nil. With peek it takes no turn of the balancer, so the
// candidate that follows returns the same node instead of skipping it.
func (m *Manager) candidate(tg target, t *tries, peek bool) (c *Client, same bool) {
	if tg.node != 0 {
		c := m.reg.load().nodes[tg.node]
		if c == nil || t.skip(tg.node) {
			return nil, false
		}
		return c, len(t.ids) > 0
	}
	v := t.view
	if v == nil {
		return nil, false
	}
	var exclude func(int64) bool
	if !t.pristine() {
		exclude = t.copied().skipTried
	}
	if id, ok := selectNode(v.bal, peek, v.ids, exclude); ok {
		return v.client(id), false
	}
	if len(t.ids) == 0 {
		return nil, false
	}
	if id, ok := selectNode(v.bal, peek, v.ids, t.copied().skip); ok {
		return v.client(id), true
	}
	return nil, false
}

// selectNode is b.Pick or, with peek, balancer.Peek.
func selectNode(b balancer.Balancer, peek bool, ids []int64, exclude func(int64) bool) (int64, bool) {
	if peek {
		return balancer.Peek(b, ids, exclude)
	}
	return b.Pick(ids, exclude)
}

// admitNext picks the node of the next attempt and has its breaker and
// bulkhead admit the call. It asks every candidate in turn without
// waiting; a node that turns the call away is skipped for the rest of the
// call, and another is picked. When every one turned it away and some
// only because all their slots were taken, the call queues at the one of
// those with the shortest queue, at most once per call: one overloaded
// call waits one bulkhead's MaxWait, not one per node.
func (m *Manager) admitNext(ctx context.Context, tg target, t *tries) (*Client, admission, error) {
	if err := m.loadRoute(tg, t); err != nil {
		return nil, admission{}, err
	}
	t.busy = t.busy[:0]
	for {
		c, _ := m.candidate(tg, t, false)
		if c == nil {
			break
		}
		adm, why, _ := m.admit(ctx, c, t.bypass(c.id), false)
		switch why {
		case admitted:
			return c, adm, nil
		case refusedBusy:
			t.busy = append(t.busy, c)
		case refusedBreaker:
			t.unhealthy = true
		}
		t.refused = append(t.refused, c.id)
	}
	if len(t.busy) == 0 || t.queued {
		return nil, admission{}, t.noNode(tg)
	}
	t.queued = true
	c := t.busy[0]
	for _, b := range t.busy[1:] {
		if b.bh.Queued() < c.bh.Queued() {
			c = b
		}
	}
	adm, why, err := m.admit(ctx, c, t.bypass(c.id), true)
	switch why {
	case admitted:
		t.refused = slices.DeleteFunc(t.refused, func(id int64) bool { return id == c.id })
		return c, adm, nil
	case refusedCaller:
		return nil, admission{}, err
	case refusedBreaker:
		t.unhealthy = true
	}
	return nil, admission{}, t.noNode(tg)
}

// noNode is the error of a call that found no node to admit it.
func (t *tries) noNode(tg target) error {
	var err error
	switch {
	case len(t.busy) > 0:
		err = ErrOverloaded
	case t.unhealthy && tg.node != 0:
		err = ErrCircuitOpen
	case t.unhealthy:
		err = ErrAllNodesUnhealthy
	default:
		err = ErrServiceUnavailable
	}
	return &NodeError{Role: tg.role, NodeID: tg.node, Err: err}
}
