package clientmanager

import (
	"context"
	"strconv"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codedError is a sentinel that converts to a gRPC status, so that
// status.Code sees its code through any wrapping. Every one of code
// Unavailable is ErrServiceUnavailable for errors.Is.
type codedError struct {
	code codes.Code
	msg  string
}

func (e *codedError) Error() string { return e.msg }

// GRPCStatus returns the error's status; status.Code and status.FromError
// use it.
func (e *codedError) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }

// Is makes every Unavailable sentinel match ErrServiceUnavailable.
func (e *codedError) Is(target error) bool {
	return target == ErrServiceUnavailable && e.code == codes.Unavailable
}

// ErrServiceUnavailable is returned when no node of the role is available
// (none listed, none connected, or all stopping), or the targeted node is
// not. It converts to codes.Unavailable. Every error of Invoke,
// InvokeNode and RoleConn whose code is Unavailable is it for errors.Is:
// ErrNodeGone, ErrClosed, ErrAllNodesUnhealthy, ErrCircuitOpen, and a
// node's own Unavailable answer.
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

// ErrUnknownRole is returned by WaitForRole for a role that is not a
// dependency (AddDependency was never called for it). It converts to
// codes.FailedPrecondition.
var ErrUnknownRole error = &codedError{code: codes.FailedPrecondition, msg: "clientmanager: role is not a dependency"}

// NodeError is a failure of a call to a role, tied to one of its nodes
// when the call reached one. Invoke, InvokeNode and RoleConn return their
// failures, other than the caller's own cancellation or deadline, as a
// *NodeError; it converts to the status of Err, and is
// ErrServiceUnavailable for errors.Is when that status is Unavailable. It
// holds no stack trace: making one costs a single small allocation.
type NodeError struct {
	// Role is the role the call was for; empty when the node's role is
	// not known (a node that is not listed, or a Client's own call).
	Role string
	// NodeID is the node's ServerID; 0 when no node was called (none
	// was available, or none admitted the call).
	NodeID int64
	// Err is what went wrong.
	Err error
}

func (e *NodeError) Error() string {
	var b []byte
	b = append(b, "clientmanager: "...)
	if e.Role != "" {
		b = append(b, "role "...)
		b = strconv.AppendQuote(b, e.Role)
		if e.NodeID != 0 {
			b = append(b, ' ')
		}
	}
	if e.NodeID != 0 || e.Role == "" {
		b = append(b, "node "...)
		b = strconv.AppendInt(b, e.NodeID, 10)
	}
	if e.Err != nil {
		b = append(b, ": "...)
		b = append(b, e.Err.Error()...)
	}
	return string(b)
}

// Unwrap returns Err.
func (e *NodeError) Unwrap() error { return e.Err }

// Is reports whether target is ErrServiceUnavailable and Err's code is
// Unavailable; errors.Is then goes on down the chain.
func (e *NodeError) Is(target error) bool {
	return target == ErrServiceUnavailable && e.Err != nil && status.Code(e.Err) == codes.Unavailable
}

// GRPCStatus passes through the status of Err (codes.Unknown when Err
// carries none; Canceled or DeadlineExceeded for a context's error).
func (e *NodeError) GRPCStatus() *status.Status {
	if e.Err == nil {
		return status.New(codes.Unknown, e.Error())
	}
	if s, ok := status.FromError(e.Err); ok {
		return s
	}
	if err := contextError(e.Err); err != nil {
		return status.FromContextError(err)
	}
	return status.New(codes.Unknown, e.Err.Error())
}

// contextError returns context.Canceled or context.DeadlineExceeded when
// err is one, else nil.
func contextError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

// unavailableForRole is ErrServiceUnavailable for role.
func unavailableForRole(role string) error {
	return &NodeError{Role: role, Err: ErrServiceUnavailable}
}

// nodeErr wraps err with the node's ID.
func nodeErr(id int64, err error) error { return &NodeError{NodeID: id, Err: err} }

// callErr returns err as a *NodeError of role and node id (0: none). An
// err that is already one for the same node is returned with the role
// filled in, not wrapped twice.
func callErr(role string, id int64, err error) error {
	if ne, ok := err.(*NodeError); ok && (ne.NodeID == id || id == 0) && (ne.Role == role || ne.Role == "") {
		if ne.Role == role {
			return ne
		}
		return &NodeError{Role: role, NodeID: ne.NodeID, Err: ne.Err}
	}
	return &NodeError{Role: role, NodeID: id, Err: err}
}
