package clientmanager

import (
	"context"
	"strconv"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codedError is a sentinel that converts to a gRPC status, so that
// status.Code sees its code through any wrapping.
type codedError struct {
	code codes.Code
	msg  string
}

func (e *codedError) Error() string { return e.msg }

// GRPCStatus returns the error's status; status.Code and status.FromError
// use it.
func (e *codedError) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }

// ErrServiceUnavailable is returned when no node of the role is available
// (none listed, none connected, or all stopping), or the targeted node is
// not. It converts to codes.Unavailable.
var ErrServiceUnavailable error = &codedError{code: codes.Unavailable, msg: "clientmanager: service unavailable"}

// ErrNodeGone is returned when the node's session was deleted, replaced by
// a new process (not merely re-registered under a new lease), or its
// identity was rejected; the call was cancelled. It converts to
// codes.Unavailable.
var ErrNodeGone error = &codedError{code: codes.Unavailable, msg: "clientmanager: node gone"}

// ErrClosed is returned when the Manager is closed. It converts to
// codes.Unavailable.
var ErrClosed error = &codedError{code: codes.Unavailable, msg: "clientmanager: manager closed"}

// ErrAllNodesUnhealthy is returned by Invoke when nodes of the role are
// available but none may be called: every one has an open circuit breaker
// or a half-open one with no probe permit left, and PanicMode is off. It
// is returned at once, without a call. It converts to codes.Unavailable.
var ErrAllNodesUnhealthy error = &codedError{code: codes.Unavailable, msg: "clientmanager: all nodes unhealthy"}

// ErrCircuitOpen is returned by InvokeNode when the node's circuit breaker
// refuses the call (open, or half-open with no probe permit left). It
// converts to codes.Unavailable.
var ErrCircuitOpen error = &codedError{code: codes.Unavailable, msg: "clientmanager: circuit breaker open"}

// ErrOverloaded is returned when the bulkhead of every node a call could
// go to turned it away (its queue was full, or the wait for a slot ran out
// of the bulkhead's MaxWait). It converts to codes.ResourceExhausted.
var ErrOverloaded error = &codedError{code: codes.ResourceExhausted, msg: "clientmanager: nodes overloaded"}

// NodeError is a failure tied to one node.
type NodeError struct {
	// NodeID is the node's ServerID.
	NodeID int64
	// Err is what went wrong.
	Err error
}

func (e *NodeError) Error() string {
	if e.Err == nil {
		return "clientmanager: node " + strconv.FormatInt(e.NodeID, 10)
	}
	return "clientmanager: node " + strconv.FormatInt(e.NodeID, 10) + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *NodeError) Unwrap() error { return e.Err }

// GRPCStatus passes through the status of Err (codes.Unknown when Err
// carries none; Canceled or DeadlineExceeded for a context's error).
func (e *NodeError) GRPCStatus() *status.Status {
	if e.Err == nil {
		return status.New(codes.Unknown, e.Error())
	}
	if s, ok := status.FromError(e.Err); ok {
		return s
	}
	if errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded) {
		return status.FromContextError(e.Err)
	}
	return status.New(codes.Unknown, e.Err.Error())
}

// unavailableForRole wraps ErrServiceUnavailable with the role's name.
func unavailableForRole(role string) error {
	return errors.Wrapf(ErrServiceUnavailable, "role %q", role)
}

// nodeErr wraps err with the node's ID.
func nodeErr(id int64, err error) error { return &NodeError{NodeID: id, Err: err} }
