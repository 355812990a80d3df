package clientmanager

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/coordkit/clientmanager/clientmanager/breaker"
)

// Health is the verdict of RoleHealth.
type Health int

const (
	// Healthy: nodes are available, every breaker is closed and no
	// bulkhead queue is above 80 %.
	Healthy Health = iota
	// Degraded: some node's breaker is open or half-open, or some node's
	// bulkhead queue is more than 80 % full; calls are still served.
	Degraded
	// Unhealthy: no node of the role is available, or some node's breaker
	// has not been closed for longer than UnhealthyAfter.
	Unhealthy
)

// String returns "healthy", "degraded" or "unhealthy".
func (h Health) String() string {
	switch h {
	case Healthy:
		return "healthy"
	case Degraded:
		return "degraded"
	case Unhealthy:
		return "unhealthy"
	}
	return "Health(" + strconv.Itoa(int(h)) + ")"
}

// HealthVerdict is RoleHealth's answer: the verdict and why.
type HealthVerdict struct {
	Role   string
	Health Health
	// Reasons lists every finding that made the verdict worse than
	// Healthy, one per node and cause, in NodeID order; empty when
	// Healthy.
	Reasons []string
}

func (v *HealthVerdict) add(h Health, format string, args ...any) {
	v.Health = max(v.Health, h)
	v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...))
}

// RoleHealth judges role from what the manager knows, without a call:
//
//   - Unhealthy when no node of the role is available (or the role is not
//     a dependency, or the manager is closed), or when a node's breaker
//     has not been closed (open, or half-open between failed probes) for
//     longer than UnhealthyAfter;
//   - Degraded when a node's breaker is open or half-open, or a node's
//     bulkhead queue holds more than 80 % of its MaxQueue;
//   - Healthy otherwise.
//
// Every listed node of the role counts, available or not.
func (m *Manager) RoleHealth(role string) HealthVerdict {
	v := HealthVerdict{Role: role}
	s := m.reg.load()
	switch view := s.role(role); {
	case s.closed:
		v.add(Unhealthy, "manager closed")
		return v
	case view == nil:
		v.add(Unhealthy, "not a dependency")
		return v
	case len(view.ids) == 0:
		v.add(Unhealthy, "no node available")
	}
	members := m.reg.roleMembers(nil, role)
	slices.SortFunc(members, func(a, b *Client) int { return cmp.Compare(a.id, b.id) })
	now := m.clock.Now()
	maxQueue := m.cfg.Bulkhead.MaxQueue
	for _, c := range members {
		if st := c.brk.State(); st != breaker.StateClosed {
			down := time.Duration(0)
			if since := c.health.downSince.Load(); since != 0 {
				down = now.Sub(time.Unix(0, since))
			}
			if down > m.cfg.UnhealthyAfter {
				v.add(Unhealthy, "node %d: circuit breaker not closed for %s (%s)", c.id, down.Round(time.Millisecond), st)
			} else {
				v.add(Degraded, "node %d: circuit breaker %s", c.id, st)
			}
		}
		if q := c.bh.Queued(); maxQueue > 0 && float64(q) > queueAlarmFactor*float64(maxQueue) {
			v.add(Degraded, "node %d: bulkhead queue %d of %d", c.id, q, maxQueue)
		}
	}
	return v
}

// refreshBreakers is the manager's ticker goroutine: every
// BreakerRefreshInterval it moves every breaker along in time (Refresh),
// so that an open breaker of a node that gets no call turns half-open on
// time, hung probes are reclaimed and Status shows current states. It is
// started with the first dependency and stopped by Close. Breakers are
// refreshed outside the registry's lock: their listeners take it.
func (m *Manager) refreshBreakers() {
	t := m.clock.NewTicker(m.cfg.BreakerRefreshInterval)
	defer t.Stop()
	var buf []*Client
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.Chan():
		}
		buf = m.reg.roleMembers(buf[:0], "")
		for _, c := range buf {
			c.brk.Refresh()
		}
		clear(buf)
	}
}
