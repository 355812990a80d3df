package clientmanager

import (
	"context"

	"github.com/cockroachdb/errors"
)

// peek returns the node the next attempt would go to, and whether it was
// tried before, without asking its breaker or bulkhead; nil when there is
// none.
func (m *Manager) peek(tg target, t *tries) (*Client, bool) {
	if err := m.replan(tg, t); err != nil {
		return nil, false
	}
	return m.pick(tg, t)
}

// replan loads the current snapshot of the role and plans the route on it.
func (m *Manager) replan(tg target, t *tries) error {
	if tg.node != 0 {
		return nil
	}
	v := m.reg.load().roles[tg.role]
	if v == nil || len(v.ids) == 0 {
		t.view, t.plan = nil, nil
		return unavailableForRole(tg.role)
	}
	plan, err := m.planRoute(v)
	t.view, t.plan = v, plan
	if err != nil {
		t.unhealthy = true
		return errors.Wrapf(err, "role %q", tg.role)
	}
	return nil
}

// pick returns the next node for tg: one not tried yet, or else one tried
// before (same), or nil.
func (m *Manager) pick(tg target, t *tries) (c *Client, same bool) {
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
		exclude = t.skipTried
	}
	if id, ok := v.bal.Pick(v.ids, exclude); ok {
		return v.client(id), false
	}
	if len(t.ids) == 0 {
		return nil, false
	}
	if id, ok := v.bal.Pick(v.ids, t.skip); ok {
		return v.client(id), true
	}
	return nil, false
}

// choose picks the node of the next attempt and has its breaker and
// bulkhead admit the call. A node that turns the call away is skipped for
// the rest of the call, and another is picked.
func (m *Manager) choose(ctx context.Context, tg target, t *tries) (*Client, admission, error) {
	if err := m.replan(tg, t); err != nil {
		return nil, admission{}, err
	}
	for {
		c, _ := m.pick(tg, t)
		if c == nil {
			return nil, admission{}, t.noNode(tg)
		}
		adm, why, err := m.admit(ctx, c, t.bypass(c.id))
		switch why {
		case admitted:
			return c, adm, nil
		case refusedCaller:
			return nil, admission{}, err
		case refusedBulkhead:
			t.overloaded = true
		case refusedBreaker:
			t.unhealthy = true
		}
		t.refused = append(t.refused, c.id)
	}
}

// noNode is the error of a call that found no node to admit it.
func (t *tries) noNode(tg target) error {
	var err error
	switch {
	case t.overloaded:
		err = ErrOverloaded
	case t.unhealthy && tg.node != 0:
		err = ErrCircuitOpen
	case t.unhealthy:
		err = ErrAllNodesUnhealthy
	default:
		err = ErrServiceUnavailable
	}
	if tg.node != 0 {
		return nodeErr(tg.node, err)
	}
	return errors.Wrapf(err, "role %q", tg.role)
}
