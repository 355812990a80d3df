package clientmanager

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/identity"
)

// callFunc is the work Invoke does with one node: typically one RPC
// through c.Conn() with ctx.
type callFunc = func(ctx context.Context, c *Client) error

// errAttemptTimeout marks the error of an attempt that ran out of its own
// time while the caller's context was still live.
var errAttemptTimeout = errors.New("clientmanager: attempt timed out")

// Invoke calls call with an available node of role and, when that is
// safe, retries a failure on another node. Each attempt goes to a node
// the role's balancer picks among those the circuit breakers and the
// ejection cap allow, once the node's bulkhead admitted it (the steps
// below); a call in flight on a node that leaves fails with
// ErrNodeGone (the node's connection is closed). Every call carries a
// request ID (identity.MetadataRequestID): ctx's when it has one
// (identity.WithRequestID, or the call a handler serves), else a new one,
// the same for all the attempts.
//
// Each attempt takes these steps:
//
//  1. Route. While some node of the role has a closed breaker, a node
//     whose breaker is open is ejected and a half-open one takes only
//     the probes its breaker admits, up to the ejection cap
//     (Config.MaxEjectionPercent; past it the nodes whose breakers opened
//     earliest are called anyway, unrecorded). With no closed breaker,
//     half-open nodes take their probes; with none free the call fails
//     with ErrAllNodesUnhealthy, or under PanicMode goes to every node.
//  2. Pick. The role's balancer picks among the candidates, skipping the
//     nodes this call tried while an untried one is left.
//  3. Admit. The node's breaker first: a refusal skips the node and is
//     not an attempt. Then its bulkhead: every candidate is tried without
//     waiting; only when all are busy does the call queue, once, at the
//     busy node with the shortest queue, for MaxWait at most.
//  4. Call, within the attempt's time (below) and ctx.
//  5. Record. The outcome goes to the balancer (in-flight count, latency)
//     and, classified as below, to the breaker; Status shows the node's
//     latency average and last failure.
//  6. Retry, when the rules below allow it and the role's RetryBudget has
//     room. A server's PushbackTrailer delays the retry by its value, or
//     forbids it when negative.
//
// Retries follow gRFC A6: by default a call is retried only when it
// provably did not reach the node's application — the node was gone or
// not connected when the attempt began, the server's gate refused it
// (Unavailable with the startup package's NOT_SERVING ErrorInfo), the
// server rejected the identity of the call (a new process at the
// address), or, for a call through RoleConn over the default dialer, the
// connection failed before the request was sent. A call marked
// Idempotent is also retried after an Unavailable or Aborted answer,
// after its attempt timed out, and when its node left while it ran. Other
// codes, ResourceExhausted included, are never retried, and neither is
// an error that carries no gRPC status (the function's own).
//
// A call makes at most Config.CallAttempts attempts (see Attempts), a
// retry goes at once to a node not tried yet when there is one, else to
// the same one after CallBackoff, and after the server's retry pushback
// when it sent one; retries are bounded by the role's RetryBudget.
//
// Each attempt of an Idempotent call is bounded by its share of the
// caller's time, so that a retry still fits when a node does not answer:
// min(CallTimeout, remaining time / attempts left), but at least 100 ms
// (the caller's deadline still bounds it). An attempt of another call,
// which no retry may follow once it was sent, has all of the caller's
// time (at most CallTimeout); its node is charged with a failure when it
// has not answered within that share all the same, so a hung node leaves
// routing after its breaker's failures whatever the calls. AttemptTimeout
// sets the bound of every attempt instead. An attempt's bound is the
// client's own: a call under it carries the caller's deadline
// (grpc-timeout) and no other, and when the attempt's time runs out the
// call is cancelled, which ends the handler's context on the server.
//
// A node is charged with a failure (its breaker, the balancer, its
// Status) only for failures that are its own: codes such as Unavailable
// or Internal, and no answer within the attempt's time. The caller's
// cancellation or deadline, a node that left or refused the call before
// it was sent, an error the function returned without a gRPC status, and
// a ResourceExhausted the client raised itself (a message over its size
// limit) are not.
//
// It fails at once, without a call and without asking etcd, with an error
// wrapping ErrServiceUnavailable when no node is available, with
// ErrAllNodesUnhealthy when every available node's breaker refuses the
// call (and PanicMode is off), and with ErrOverloaded
// (codes.ResourceExhausted) when every node's bulkhead turned it away: it
// tries each node's bulkhead without waiting first, then queues at one
// node at most once per call. Its failures are *NodeError values naming
// the role and node; every one whose code is Unavailable is
// ErrServiceUnavailable for errors.Is.
//
// When the caller's ctx ends Invoke returns at once with an error that
// errors.Is ctx's error and converts to codes.Canceled or
// codes.DeadlineExceeded; it never retries then.
func (m *Manager) Invoke(ctx context.Context, role string, call func(ctx context.Context, c *Client) error, opts ...CallOption) error {
	s := m.reg.load()
	v := s.role(role)
	if v == nil || len(v.ids) == 0 {
		return m.fastFail(role, roleUnavailable(s, v, role))
	}
	return m.invoke(ctx, target{role: role, shared: v.shared, view: v}, call, buildCallOptions(opts))
}

// InvokeNode is Invoke with one node: every attempt goes to nodeID, each
// retry after CallBackoff (or the server's pushback). It fails at once
// with a *NodeError wrapping ErrServiceUnavailable when the node is not
// available, ErrCircuitOpen when its breaker refuses the call, and
// ErrOverloaded when its bulkhead does. The ejection cap and PanicMode do
// not apply.
func (m *Manager) InvokeNode(ctx context.Context, nodeID int64, call func(ctx context.Context, c *Client) error, opts ...CallOption) error {
	s := m.reg.load()
	c := s.nodes[nodeID]
	if c == nil {
		role := m.reg.roleOf(nodeID)
		err := ErrServiceUnavailable
		if s.closed {
			err = ErrClosed
		}
		return m.fastFail(role, &NodeError{Role: role, NodeID: nodeID, Err: err})
	}
	return m.invoke(ctx, target{role: c.role, node: nodeID, shared: c.shared}, call, buildCallOptions(opts))
}

// roleUnavailable is the error of a call to a role with no available node.
func roleUnavailable(s *snapshot, v *roleView, role string) error {
	switch {
	case s.closed:
		return &NodeError{Role: role, Err: ErrClosed}
	case v != nil && v.unavailable != nil:
		return v.unavailable // made once per role: the fast fail does not allocate
	}
	return unavailableForRole(role)
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
	shared *roleShared
	view   *roleView // the role as the call found it; its first route is planned on it
}

// callEnded counts a call to tg that ended with err.
func (m *Manager) callEnded(tg target, err error) {
	if err == nil {
		tg.shared.okCalls.Inc()
		return
	}
	m.metrics.call(tg.role, status.Code(err))
}

// invoke runs the attempts of one call of fn. Every attempt carries the
// same request ID: ctx's (identity.RequestIDFrom), else a new one.
func (m *Manager) invoke(ctx context.Context, tg target, fn callFunc, o callOptions) (err error) {
	defer func() { m.callEnded(tg, err) }()
	rid := identity.RequestIDFrom(ctx)
	if rid == "" {
		rid = m.reqIDs.Next()
	}
	return m.run(ctx, tg, o, func(c *Client, adm admission, attempt, attempts int, start time.Time) attemptResult {
		return m.attempt(ctx, c, adm, fn, m.attemptBounds(ctx, o, attempt, attempts), o.single, rid, start)
	})
}

// tryFunc makes attempt number attempt, of at most attempts, on c, which
// admitted it with adm; it must end adm. start is when the call began,
// for the first attempt, else zero.
type tryFunc = func(c *Client, adm admission, attempt, attempts int, start time.Time) attemptResult

// run runs the attempts of one call: it routes each to a node, has try
// make it, and decides whether to retry.
func (m *Manager) run(ctx context.Context, tg target, o callOptions, try tryFunc) error {
	start := m.clock.Now() // one clock read for the budget and the first attempt
	tg.shared.budget.depositAt(start)
	attempts := o.attempts
	if attempts == 0 {
		attempts = m.cfg.CallAttempts
	}
	var (
		t           tries
		last        error
		r           attemptResult // the last attempt's
		sameRetries int
	)
	for attempt := 1; ; attempt++ {
		if m.expired(ctx) {
			return newCallerError(ctx, last)
		}
		if attempt > 1 {
			if attempt > attempts {
				return last
			}
			wait, ok := m.retryWait(tg, &t, r.a, &sameRetries)
			if !ok {
				return last
			}
			if !m.wait(ctx, wait) {
				if m.expired(ctx) {
					return newCallerError(ctx, last)
				}
				return last // the next attempt would end past the deadline
			}
		}
		c, adm, err := m.admitNext(ctx, tg, &t)
		if err != nil {
			switch {
			case m.expired(ctx):
				return newCallerError(ctx, last)
			case last != nil:
				return last
			case errors.Is(err, ErrAllNodesUnhealthy) || errors.Is(err, ErrCircuitOpen):
				m.metrics.unhealthyFails.WithLabelValues(tg.role).Inc()
			}
			return err
		}
		if attempt > 1 && !tg.shared.budget.withdraw() { // spent only now that the retry is made
			adm.abandon(c)
			m.metrics.budgetExhausted.WithLabelValues(tg.role).Inc()
			return last
		}
		tg.shared.attempts.Inc()
		if t.queued {
			start = time.Time{} // it waited for its bulkhead: its time starts now
		}
		r = try(c, adm, attempt, attempts, start)
		start = time.Time{}
		if r.err == nil {
			return nil
		}
		last = callErr(tg.role, c.id, r.err)
		if m.expired(ctx) {
			return newCallerError(ctx, last)
		}
		if !r.retryable(o.idempotent) {
			return last
		}
		if r.elsewhere {
			t.gone = append(t.gone, c.id)
		}
		t.ids = append(t.ids, c.id)
	}
}

// retryWait decides whether a retry may follow the attempt a (nil when
// the node refused it before the call), and how long to wait before it:
// the server's pushback when it sent one (a negative or malformed one
// forbids the retry), else CallBackoff when the only node left is one
// tried before, else nothing. The retry must find a node and fit in the
// role's retry budget, which is spent only once the retry is made.
func (m *Manager) retryWait(tg target, t *tries, a *attemptCtx, sameRetries *int) (time.Duration, bool) {
	var (
		pushback          time.Duration
		hasPushback, stop bool
	)
	if a != nil {
		pushback, hasPushback, stop = a.retryDelay()
	}
	if stop {
		m.metrics.pushbackStops.WithLabelValues(tg.role).Inc()
		return 0, false
	}
	c, same := m.peek(tg, t)
	if c == nil {
		return 0, false
	}
	if !tg.shared.budget.allows() {
		m.metrics.budgetExhausted.WithLabelValues(tg.role).Inc()
		return 0, false
	}
	switch {
	case hasPushback:
		m.metrics.pushbackWaits.WithLabelValues(tg.role).Inc()
		return pushback, true
	case same:
		*sameRetries++
		return m.cfg.CallBackoff.Delay(*sameRetries, rand.Float64()), true
	}
	return 0, true
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

// expired reports whether ctx ended or its deadline passed on the
// manager's clock: grpc may report DeadlineExceeded a moment before
// ctx.Err says so.
func (m *Manager) expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !m.clock.Now().Before(dl)
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
