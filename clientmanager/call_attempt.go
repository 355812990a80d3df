package clientmanager

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/identity"
)

// minAttemptTimeout is the least time an attempt's share of the caller's
// time gives it (only the caller's deadline itself cuts an attempt
// shorter), so that a caller in a hurry does not make healthy nodes look
// hung.
const minAttemptTimeout = 100 * time.Millisecond

// The ErrorInfo of a call the node's gate refused because the process
// does not serve (yet, or any more): startup.ErrorDomain and
// startup.ReasonNotServing, which this package may not import.
const (
	gateErrorDomain = identity.ErrorDomain
	gateNotServing  = "NOT_SERVING"
)

// errNoAnswer is what the balancer learns of an attempt whose node was
// charged with a failure for not answering within its share.
var errNoAnswer = status.Error(codes.DeadlineExceeded, "clientmanager: no answer within the attempt's share of the caller's time")

// bounds is how long one attempt may take.
type bounds struct {
	// timeout bounds the attempt; the caller's deadline bounds it too.
	timeout time.Duration
	// charge, when > 0, is when a node that has not answered yet is
	// charged with a failure while the attempt goes on.
	charge time.Duration
}

// attemptBounds returns the bounds of attempt number attempt of
// attempts: see Invoke.
func (m *Manager) attemptBounds(ctx context.Context, o callOptions, attempt, attempts int) bounds {
	if o.attemptTimeout > 0 {
		return bounds{timeout: o.attemptTimeout}
	}
	b := bounds{timeout: m.cfg.CallTimeout}
	dl, ok := ctx.Deadline()
	if !ok {
		return b
	}
	remaining := m.clock.Until(dl)
	left := time.Duration(max(attempts-attempt+1, 1))
	share := min(m.cfg.CallTimeout, max(remaining/left, minAttemptTimeout))
	switch {
	case o.idempotent:
		b.timeout = share // a retry may follow a timeout: keep time for it
	case share < min(m.cfg.CallTimeout, remaining):
		b.charge = share // no retry may follow: run on, but judge the node
	}
	return b
}

// attemptResult is what one attempt came to.
type attemptResult struct {
	a         *attemptCtx // nil when the node refused the attempt before the call
	err       error
	outcome   breaker.Outcome // what the node is charged with
	unsent    bool            // the request provably did not reach the node's application
	elsewhere bool            // the node is gone or not connected: not again in this call
	timedOut  bool            // the attempt's own time ran out while the caller waited
}

// retryable reports whether another attempt may follow r: when nothing
// was sent, or for an idempotent call after a failure another node may
// not have.
func (r *attemptResult) retryable(idempotent bool) bool {
	switch {
	case r.unsent:
		return true
	case !idempotent:
		return false
	case r.timedOut:
		return true
	}
	switch status.Code(r.err) {
	case codes.Unavailable, codes.Aborted:
		return true
	}
	return false
}

// attempt makes one attempt on c, admitted with adm, within b, and
// records what it says about the node with the balancer, the breaker and
// the node's statistics. single says fn makes exactly one call; its calls
// carry requestID. The attempt's latency counts from start, or from now
// when start is zero (the first attempt's is the call's start: its route
// and admission, a few hundred ns, count too).
func (m *Manager) attempt(ctx context.Context, c *Client, adm admission, fn callFunc, b bounds, single bool, requestID string, start time.Time) attemptResult {
	if refused := c.refusal(); refused != nil {
		adm.done(c, breaker.Excluded)
		return attemptResult{err: refused, outcome: breaker.Excluded, unsent: true, elsewhere: true}
	}
	var bc balancer.Call
	if c.bal != nil {
		bc = c.bal.Start(c.id)
	}
	if start.IsZero() {
		start = m.clock.Now()
	}
	var ch *charge
	if b.charge > 0 {
		ch = &charge{}
		t := m.clock.AfterFunc(b.charge, func() { ch.fire(m, c, adm, b.charge) })
		defer t.Stop()
	}
	a := newAttemptCtx(ctx, c, requestID)
	a.single = single
	a.carry(c.target.Load())
	if dl, ok := ctx.Deadline(); !ok || m.clock.Until(dl) > b.timeout {
		// The attempt ends before the caller's deadline: a deadline of
		// its own. Otherwise the caller's deadline is the attempt's.
		a.setTimeout(m.clock, start, b.timeout)
		defer a.end()
	}
	err := fn(a, c)
	err, cut := c.outcome(a, err)
	left := cut || a.left.Load() // the node left while the call ran
	latency := m.clock.Since(start)
	charged := ch != nil && !ch.state.CompareAndSwap(chargeRunning, chargeEnded)

	r := m.judge(ctx, a, c, a, err, left)
	switch {
	case charged:
		adm.permit.Release() // the breaker has the failure already
		bc.Done(latency, errNoAnswer)
	default:
		adm.done(c, r.outcome)
		bc.Done(latency, balancerError(r.outcome, err))
	}
	if r.outcome != breaker.Excluded || charged {
		c.health.observe(latency)
	}
	if r.outcome == breaker.Failure {
		c.health.lastFail.Store(&failure{at: m.clock.Now(), err: err.Error()})
	}
	if r.timedOut {
		r.err = errors.Mark(err, errAttemptTimeout)
	}
	return r
}

// refusal returns why c cannot take a call at all, before one is made:
// its node left, or it has no connection; nil when it can.
func (c *Client) refusal() error {
	switch {
	case c.isGone():
		return nodeErr(c.id, ErrNodeGone)
	case c.conn() == nil:
		return nodeErr(c.id, ErrServiceUnavailable)
	}
	return nil
}

// judge classifies err, the result of an attempt on c under the caller's
// ctx and the attempt's actx, with a the attempt's context and left
// whether the node left while the call ran.
func (m *Manager) judge(ctx, actx context.Context, c *Client, a *attemptCtx, err error, left bool) attemptResult {
	r := attemptResult{a: a, err: err, outcome: breaker.Success}
	if err == nil {
		return r
	}
	overGRPC := c.overGRPC()
	code := status.Code(err)
	switch {
	case m.expired(ctx):
		r.outcome = breaker.Excluded // the caller's own cancellation or deadline
	case errors.Is(err, ErrNodeGone):
		// Cut short because the node left (left), or refused before it
		// was sent: the connection found the node gone, or the server
		// rejected the call's identity (see Client.outcome).
		r.outcome, r.elsewhere = breaker.Excluded, true
		r.unsent = !left && concerns(err, c)
	case identity.IsMismatch(err):
		c.reject()
		r.outcome, r.elsewhere, r.unsent = breaker.Excluded, true, true
	case notServing(err):
		r.outcome, r.unsent = breaker.Excluded, true
	case m.expired(actx):
		r.outcome, r.timedOut = breaker.Failure, true // no answer within the attempt's time
	case ownError(err):
		r.outcome = breaker.Excluded // the function's own, made without a call
	case code == codes.ResourceExhausted && overGRPC && a.unanswered():
		r.outcome = breaker.Excluded // raised by the client: a message over its size limit
	default:
		r.outcome = c.brk.Classify(err, ctx)
	}
	if !r.unsent && code == codes.Unavailable && overGRPC && a.unsentCalls() {
		r.unsent = true // no transport stream: the connection failed before sending
	}
	return r
}

// balancerError is what the balancer learns of an attempt that ended with
// err and outcome o: the error of a node's failure, nothing of a success,
// and a cancellation (which it ignores) of what says nothing about the
// node.
func balancerError(o breaker.Outcome, err error) error {
	switch o {
	case breaker.Failure:
		return err
	case breaker.Excluded:
		return context.Canceled
	}
	return nil
}

// overGRPC reports whether c's calls go over a grpc.ClientConn, whose
// trailers tell a call that was never sent (see notePushback).
func (c *Client) overGRPC() bool {
	_, ok := c.conn().(*grpc.ClientConn)
	return ok
}

// concerns reports whether err is c's own *NodeError, not that of another
// node the function called.
func concerns(err error, c *Client) bool {
	var ne *NodeError
	return errors.As(err, &ne) && ne.NodeID == c.id
}

// notServing reports whether err is the refusal of a node's gate: the
// process does not serve (starting, standby, stopping), and the request
// did not reach its handler.
func notServing(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok &&
			info.GetDomain() == gateErrorDomain && info.GetReason() == gateNotServing {
			return true
		}
	}
	return false
}

// ownError reports whether err is the function's own: it carries no gRPC
// status (every failed call through a Client's Conn does) and is no
// context's error.
func ownError(err error) bool {
	_, ok := status.FromError(err)
	return !ok && contextError(err) == nil
}

// States of a charge.
const (
	chargeRunning int32 = iota
	chargeFired         // the node was charged with a failure
	chargeEnded         // the attempt ended first
)

// charge is the early failure of an attempt that has not answered within
// its share of the caller's time while it goes on (see bounds.charge).
type charge struct {
	state atomic.Int32
}

// fire charges c with a failure, unless the attempt ended already.
func (ch *charge) fire(m *Manager, c *Client, adm admission, after time.Duration) {
	if !ch.state.CompareAndSwap(chargeRunning, chargeFired) {
		return
	}
	if !adm.bypass {
		c.brk.Record(adm.tok, breaker.Failure)
	}
	c.health.lastFail.Store(&failure{at: m.clock.Now(), err: "no answer within " + after.String()})
}
