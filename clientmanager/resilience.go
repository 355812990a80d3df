package clientmanager

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/clientmanager/bulkhead"
	"github.com/coordkit/clientmanager/internal/ewma"
	"github.com/coordkit/clientmanager/session"
)

// roleShared is the state of a role that every snapshot of it and every
// Client of it share.
type roleShared struct {
	// notClosed counts the role's members whose breaker is not closed, as
	// the breakers' listeners report it. Zero lets a pick skip the
	// breakers altogether.
	notClosed atomic.Int32
	budget    *retryBudget
	// okCalls and attempts are the role's children of calls_total (code
	// OK) and attempts_total, resolved once: the call path counts a
	// success and an attempt without looking a child up by its labels.
	okCalls, attempts prometheus.Counter
}

// newRoleShared returns the shared state of a new role.
func (m *Manager) newRoleShared(role string) *roleShared {
	return &roleShared{
		budget:   newRetryBudget(m.cfg.RetryBudget, m.clock),
		okCalls:  m.metrics.calls.WithLabelValues(role, codes.OK.String()),
		attempts: m.metrics.attempts.WithLabelValues(role),
	}
}

// nodeHealth is what the manager learned about one node from its calls.
// Its fields are atomics, read by the router, Status and RoleHealth.
type nodeHealth struct {
	openedAt  atomic.Int64 // manager-clock UnixNano of the breaker's last opening; 0: never
	downSince atomic.Int64 // manager-clock UnixNano since when the breaker is not closed; 0 while closed
	latencyNs ewma.EWMA    // smoothed attempt latency in ns; 0 before the first
	lastFail  atomic.Pointer[failure]
}

// failure is the last call failure a node's breaker counted.
type failure struct {
	at  time.Time
	err string
}

// ewmaWeight is the weight of the newest latency in NodeStatus.LatencyEWMA.
const ewmaWeight = 0.2

// observe folds one attempt's latency into the moving average.
func (h *nodeHealth) observe(latency time.Duration) {
	h.latencyNs.Observe(float64(latency), ewmaWeight)
}

func (h *nodeHealth) latency() time.Duration {
	return time.Duration(h.latencyNs.Value())
}

// newNodeClient returns the Client of s's node with its circuit breaker,
// bulkhead and, when PoolSize > 1, its connection pool.
func (m *Manager) newNodeClient(s session.Session, bal balancer.Balancer, shared *roleShared, log *zap.Logger) *Client {
	c := newClient(s, bal)
	c.shared = shared
	opts := []breaker.Option{
		breaker.WithClock(m.clock),
		breaker.WithLogger(log),
		breaker.WithOnStateChange(func(from, to breaker.State) { m.breakerChanged(c, from, to) }),
	}
	brk, err := breaker.New(m.cfg.Breaker, opts...)
	if err != nil { // not reached: New validated the config
		log.Error("circuit breaker config rejected, using the defaults", zap.Error(err))
		brk, _ = breaker.New(breaker.DefaultConfig(), opts...)
	}
	bh, err := bulkhead.New(m.cfg.Bulkhead, bulkhead.WithClock(m.clock))
	if err != nil { // not reached: New validated the config
		log.Error("bulkhead config rejected, using the defaults", zap.Error(err))
		bh, _ = bulkhead.New(bulkhead.DefaultConfig(), bulkhead.WithClock(m.clock))
	}
	c.brk, c.bh = brk, bh
	if m.cfg.PoolSize > 1 {
		c.pool = newConnPool(m.cfg.PoolSize)
	}
	return c
}

// breakerChanged is the listener of every breaker. The breaker calls it
// outside its own lock, once per transition, in order; it logged the
// change itself (with the node's fields).
func (m *Manager) breakerChanged(c *Client, _, to breaker.State) {
	now := m.clock.Now().UnixNano()
	switch to {
	case breaker.StateOpen:
		c.health.openedAt.Store(now)
		c.health.downSince.CompareAndSwap(0, now)
	case breaker.StateClosed:
		c.health.downSince.Store(0)
	}
	m.metrics.breakerTransitions.WithLabelValues(c.role, to.String()).Inc()
	m.reg.breakerChanged(c, to != breaker.StateClosed)
}

// admission is what a call holds on a node while it runs.
type admission struct {
	tok    breaker.Token
	permit bulkhead.Permit
	bypass bool // sent past the breaker (ejection cap or panic): its result is not recorded
}

// refusal says why a node turned a call away before it was made.
type refusal int

const (
	admitted        refusal = iota
	refusedBreaker          // open, or half-open without a probe permit
	refusedBusy             // every slot taken: the call did not queue
	refusedBulkhead         // queue full or MaxWait ran out
	refusedCaller           // the caller's context ended while queued
)

// errBusy is the refusal of a bulkhead asked without queueing.
var errBusy = errors.New("clientmanager: every slot of the node's bulkhead is taken")

// admit asks c's breaker, then its bulkhead, for one attempt. With bypass
// set, a refusing breaker is passed over (the call goes out unrecorded).
// Without queue, the bulkhead admits the call only to a free slot; with
// it, the call waits in its queue at most MaxWait and never past ctx.
func (m *Manager) admit(ctx context.Context, c *Client, bypass, queue bool) (admission, refusal, error) {
	tok, err := c.brk.Allow()
	if err != nil {
		if !bypass {
			return admission{}, refusedBreaker, err
		}
		tok, err = breaker.Token{}, nil
	} else {
		bypass = false
	}
	var p bulkhead.Permit
	if queue {
		p, err = c.bh.Acquire(ctx)
	} else if free, ok := c.bh.TryAcquire(); ok {
		p = free
	} else {
		err = errBusy
	}
	if err != nil {
		c.brk.Record(tok, breaker.Excluded) // frees a probe permit
		switch {
		case err == errBusy:
			m.metrics.bulkheadRejections.WithLabelValues(c.role).Inc()
			return admission{}, refusedBusy, err
		case bulkhead.IsOverloaded(err):
			m.metrics.bulkheadRejections.WithLabelValues(c.role).Inc()
			return admission{}, refusedBulkhead, err
		}
		return admission{}, refusedCaller, err
	}
	return admission{tok: tok, permit: p, bypass: bypass}, admitted, nil
}

// done records the end of an attempt admitted with a.
func (a admission) done(c *Client, o breaker.Outcome) {
	a.permit.Release()
	if !a.bypass {
		c.brk.Record(a.tok, o)
	}
}

// abandon gives back an admission whose attempt is not made.
func (a admission) abandon(c *Client) { a.done(c, breaker.Excluded) }
