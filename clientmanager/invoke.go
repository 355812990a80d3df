package clientmanager

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
)

// callFunc is the work Invoke does with one node: typically one RPC
// through c.Conn() with ctx.
type callFunc = func(ctx context.Context, c *Client) error

// errAttemptTimeout marks the error of an attempt that ran out of its own
// CallTimeout while the caller's context was still live.
var errAttemptTimeout = errors.New("clientmanager: attempt timed out")

// Invoke calls call with an available node of role and retries retryable
// failures (see the package doc). Each attempt goes to a node the role's
// balancer picks among those the circuit breakers and the ejection cap
// allow, after the node's bulkhead admitted it; a retry goes at once to
// another node when there is one, to the same node after CallBackoff, and
// after the server's retry pushback when it sent one; retries are bounded
// by the role's RetryBudget. Each attempt's ctx is bounded by CallTimeout
// and by the caller's ctx, and is cancelled when the node leaves.
//
// It fails at once, without a call and without asking etcd, with an error
// wrapping ErrServiceUnavailable when no node is available, with
// ErrAllNodesUnhealthy when every available node's breaker refuses the
// call (and PanicMode is off), and with ErrOverloaded
// (codes.ResourceExhausted) when every node's bulkhead turned it away.
//
// When the caller's ctx ends Invoke returns at once with an error that
// errors.Is ctx's error and converts to codes.Canceled or
// codes.DeadlineExceeded; it never retries then.
func (m *Manager) Invoke(ctx context.Context, role string, call func(ctx context.Context, c *Client) error) error {
	s := m.reg.load()
	v := s.roles[role]
	if v == nil || len(v.ids) == 0 {
		return m.fastFail(role, s.unavailable(v, role))
	}
	return m.invoke(ctx, target{role: role, budget: v.shared.budget}, call)
}

// InvokeNode is Invoke with one node: every attempt goes to nodeID, each
// retry after CallBackoff (or the server's pushback). It fails at once
// with a *NodeError wrapping ErrServiceUnavailable when the node is not
// available, ErrCircuitOpen when its breaker refuses the call, and
// ErrOverloaded when its bulkhead does. The ejection cap and PanicMode do
// not apply.
func (m *Manager) InvokeNode(ctx context.Context, nodeID int64, call func(ctx context.Context, c *Client) error) error {
	s := m.reg.load()
	c := s.nodes[nodeID]
	if c == nil {
		err := nodeErr(nodeID, ErrServiceUnavailable)
		if s.closed {
			err = ErrClosed
		}
		return m.fastFail(m.reg.roleOf(nodeID), err)
	}
	return m.invoke(ctx, target{role: c.role, node: nodeID, budget: c.shared.budget}, call)
}

func (m *Manager) fastFail(role string, err error) error {
	m.metrics.fastFails.WithLabelValues(role).Inc()
	m.metrics.call(role, codes.Unavailable)
	return err
}

// target is where the attempts of one call may go: any node of role, or
// only node.
type target struct {
	role   string
	node   int64 // 0: any node of role
	budget *retryBudget
}

// invoke runs the attempts of one call.
func (m *Manager) invoke(ctx context.Context, tg target, fn callFunc) (err error) {
	defer func() { m.metrics.call(tg.role, status.Code(err)) }()
	tg.budget.deposit()
	var (
		t           tries
		last        error
		a           *attemptCtx // the last attempt's
		sameRetries int
	)
	for attempt := 1; ; attempt++ {
		if expired(ctx) {
			return newCallerError(ctx, last)
		}
		if attempt > 1 {
			if attempt > m.cfg.CallAttempts {
				return last
			}
			wait, ok := m.retryWait(tg, &t, a, &sameRetries)
			if !ok {
				return last
			}
			if !m.wait(ctx, wait) {
				if expired(ctx) {
					return newCallerError(ctx, last)
				}
				return last // the next attempt would end past the deadline
			}
		}
		c, adm, err := m.choose(ctx, tg, &t)
		if err != nil {
			switch {
			case expired(ctx):
				return newCallerError(ctx, last)
			case last != nil:
				return last
			case errors.Is(err, ErrAllNodesUnhealthy) || errors.Is(err, ErrCircuitOpen):
				m.metrics.unhealthyFails.WithLabelValues(tg.role).Inc()
			}
			return err
		}
		m.metrics.attempts.WithLabelValues(tg.role).Inc()
		a, err = m.attempt(ctx, c, adm, fn)
		if err == nil {
			return nil
		}
		if expired(ctx) {
			return newCallerError(ctx, err)
		}
		last = err
		switch classify(c, err) {
		case notRetryable:
			return err
		case retryElsewhere:
			t.gone = append(t.gone, c.id)
		}
		t.ids = append(t.ids, c.id)
	}
}

// retryWait decides whether a retry may follow the attempt a, and how
// long to wait before it: the server's pushback when it sent one (a
// negative or malformed one forbids the retry), else CallBackoff when the
// only node left is one tried before, else nothing. The retry must find a
// node and fit in the role's retry budget.
func (m *Manager) retryWait(tg target, t *tries, a *attemptCtx, sameRetries *int) (time.Duration, bool) {
	pushback, hasPushback, stop := a.retryDelay()
	if stop {
		m.metrics.pushbackStops.WithLabelValues(tg.role).Inc()
		return 0, false
	}
	c, same := m.peek(tg, t)
	if c == nil {
		return 0, false
	}
	if !tg.budget.withdraw() {
		m.metrics.budgetExhausted.WithLabelValues(tg.role).Inc()
		return 0, false
	}
	switch {
	case hasPushback:
		m.metrics.pushbackWaits.WithLabelValues(tg.role).Inc()
		return pushback, true
	case same:
		*sameRetries++
		return m.cfg.CallBackoff.Backoff(*sameRetries, rand.Float64()), true
	}
	return 0, true
}

// attempt makes one attempt on c, admitted with adm, and records its
// result with the balancer, the breaker (classified with the caller's
// ctx) and the node's statistics. It returns the attempt's context, which
// holds the server's retry pushback, if any.
func (m *Manager) attempt(ctx context.Context, c *Client, adm admission, fn callFunc) (*attemptCtx, error) {
	var bc balancer.Call
	if c.bal != nil {
		bc = c.bal.Start(c.id)
	}
	start := m.clock.Now()
	actx, cancel := withTimeout(ctx, m.clock, m.cfg.CallTimeout)
	defer cancel()
	bctx, release := c.bind(actx)
	a := newAttemptCtx(bctx, c)
	err := c.outcome(bctx, fn(a, c))
	release()
	timedOut := err != nil && expired(actx) && !expired(ctx) && !errors.Is(err, ErrNodeGone)
	latency := m.clock.Since(start)
	bc.Done(latency, err)
	o := breakerOutcome(c, err, ctx)
	adm.done(c, o)
	if o != breaker.Excluded {
		c.health.observe(latency)
	}
	if o == breaker.Failure {
		c.health.lastFail.Store(&failure{at: m.clock.Now(), err: err.Error()})
	}
	if timedOut {
		err = errors.Mark(err, errAttemptTimeout)
	}
	return a, err
}

type retryKind int

const (
	notRetryable   retryKind = iota
	retryAny                 // on another node at once, or on this one after CallBackoff
	retryElsewhere           // the node is gone: never on it again
)

// classify says whether an attempt's error is worth another attempt.
// codes.ResourceExhausted is not: a loaded server should not get more load.
func classify(c *Client, err error) retryKind {
	switch {
	case errors.Is(err, ErrNodeGone):
		return retryElsewhere
	case IsIdentityMismatch(err):
		c.reject()
		return retryElsewhere
	case errors.Is(err, errAttemptTimeout):
		return retryAny
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted:
		return retryAny
	}
	return notRetryable
}

// wait waits d on the manager's clock; false when ctx ended first, or its
// deadline comes before d has passed.
func (m *Manager) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	if dl, ok := ctx.Deadline(); ok && m.clock.Until(dl) <= d {
		return false
	}
	t := m.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}

// expired reports whether ctx ended or its deadline passed: grpc may
// report DeadlineExceeded a moment before ctx.Err says so.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

func newCallerError(ctx context.Context, last error) error {
	err := ctx.Err()
	if err == nil {
		err = context.DeadlineExceeded // the deadline passed; ctx says so in a moment
	}
	return &callerError{ctxErr: err, last: last}
}

// callerError is returned when the caller's context ended: errors.Is sees
// the context's error, and it converts to codes.Canceled or
// codes.DeadlineExceeded.
type callerError struct {
	ctxErr error
	last   error // the last attempt's error, if any
}

func (e *callerError) Error() string {
	if e.last == nil {
		return "clientmanager: " + e.ctxErr.Error()
	}
	return "clientmanager: " + e.ctxErr.Error() + " (last attempt: " + e.last.Error() + ")"
}

func (e *callerError) Unwrap() error { return e.ctxErr }

// GRPCStatus returns codes.Canceled or codes.DeadlineExceeded.
func (e *callerError) GRPCStatus() *status.Status { return status.FromContextError(e.ctxErr) }
