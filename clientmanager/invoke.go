package clientmanager

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
)

// callFunc is the work Invoke does with one node: typically one RPC
// through c.Conn() with ctx.
type callFunc = func(ctx context.Context, c *Client) error

// errAttemptTimeout marks the error of an attempt that ran out of its own
// CallTimeout while the caller's context was still live.
var errAttemptTimeout = errors.New("clientmanager: attempt timed out")

// Invoke calls call with an available node of role, picked by the role's
// balancer, and retries retryable failures (see the package doc): at once
// on another node when there is one, on the same node after CallBackoff.
// Each attempt's ctx is bounded by CallTimeout and by the caller's ctx, and
// is cancelled when the node leaves. With no node available Invoke returns
// an error wrapping ErrServiceUnavailable at once, without asking etcd.
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
	return m.invoke(ctx, role, call, func(t *tries) (*Client, bool) {
		v := m.reg.load().roles[role]
		if v == nil || len(v.ids) == 0 {
			return nil, false
		}
		if id, ok := v.bal.Pick(v.ids, t.tried); ok {
			return v.client(id), false
		}
		// Every available node was tried: one that may be tried again.
		if id, ok := v.bal.Pick(v.ids, t.excluded); ok {
			return v.client(id), true
		}
		return nil, false
	})
}

// InvokeNode is Invoke with one node: every attempt goes to nodeID, each
// retry after CallBackoff. It fails at once with a *NodeError wrapping
// ErrServiceUnavailable when the node is not available.
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
	return m.invoke(ctx, c.role, call, func(t *tries) (*Client, bool) {
		c := m.reg.load().nodes[nodeID]
		if c == nil || t.excluded(nodeID) {
			return nil, false
		}
		return c, len(t.ids) > 0
	})
}

func (m *Manager) fastFail(role string, err error) error {
	m.metrics.fastFails.WithLabelValues(role).Inc()
	m.metrics.call(role, codes.Unavailable)
	return err
}

// tries is what one Invoke has tried.
type tries struct {
	ids  []int64 // nodes tried
	gone []int64 // nodes not to try again
}

func (t *tries) tried(id int64) bool    { return slices.Contains(t.ids, id) }
func (t *tries) excluded(id int64) bool { return slices.Contains(t.gone, id) }

// invoke runs the attempts; pick returns the next node, and whether it was
// tried before (then a backoff comes first), or nil when there is none.
func (m *Manager) invoke(ctx context.Context, role string, fn callFunc, pick func(*tries) (*Client, bool)) (err error) {
	defer func() { m.metrics.call(role, status.Code(err)) }()
	var (
		t           tries
		last        error
		sameRetries int
	)
	for attempt := 1; attempt <= m.cfg.CallAttempts; attempt++ {
		if expired(ctx) {
			return newCallerError(ctx, last)
		}
		c, same := pick(&t)
		if c != nil && same {
			sameRetries++
			if !m.wait(ctx, m.cfg.CallBackoff.Backoff(sameRetries, rand.Float64())) {
				if expired(ctx) {
					return newCallerError(ctx, last)
				}
				return last // the next attempt would end past the deadline
			}
			c, _ = pick(&t) // the set may have changed during the wait
		}
		if c == nil {
			if last != nil {
				return last
			}
			return unavailableForRole(role)
		}
		m.metrics.attempts.WithLabelValues(role).Inc()
		err := m.attempt(ctx, c, fn)
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
	return last
}

// attempt makes one attempt on c. It is where per-node admission and
// recording happen: the balancer counts the attempt in flight; the node's
// circuit breaker, bulkhead and the retry budget hook in here.
func (m *Manager) attempt(ctx context.Context, c *Client, fn callFunc) error {
	var bc balancer.Call
	if c.bal != nil {
		bc = c.bal.Start(c.id)
	}
	start := m.clock.Now()
	actx, cancel := withTimeout(ctx, m.clock, m.cfg.CallTimeout)
	defer cancel()
	bctx, release := c.bind(actx)
	err := c.outcome(bctx, fn(bctx, c))
	release()
	timedOut := err != nil && expired(actx) && !expired(ctx) && !errors.Is(err, ErrNodeGone)
	bc.Done(m.clock.Since(start), err)
	if timedOut {
		err = errors.Mark(err, errAttemptTimeout)
	}
	return err
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
