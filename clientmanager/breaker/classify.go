package breaker

import (
	"context"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Classify maps the result of a call to an Outcome:
//
//   - nil → Success;
//   - any error once callerCtx is done (the caller cancelled or ran out of
//     time; nothing is known about the node) → Excluded;
//   - otherwise ClassifyError(err).
//
// callerCtx is the context of the caller, not the per-attempt context the
// call ran under: an attempt that hit its own timeout while the caller was
// still waiting is the node's failure. A nil callerCtx is never done.
func Classify(err error, callerCtx context.Context) Outcome {
	if err == nil {
		return Success
	}
	if callerCtx != nil && callerCtx.Err() != nil {
		return Excluded
	}
	return ClassifyError(err)
}

// ClassifyError maps a non-nil error, whose caller is still waiting, to an
// Outcome. context.DeadlineExceeded (the attempt's own timeout) is a
// Failure and context.Canceled (cancelled by something other than the
// caller) is a Success; any other error is classified by its gRPC status
// code with ClassifyCode. An error that carries no status has code
// Unknown and is a Failure. Wrapped errors are unwrapped.
func ClassifyError(err error) Outcome {
	switch {
	case err == nil:
		return Success
	case errors.Is(err, context.DeadlineExceeded):
		return Failure
	case errors.Is(err, context.Canceled):
		return Success
	}
	return ClassifyCode(status.Code(err))
}

// ClassifyCode maps a gRPC status code to an Outcome. Codes that say the
// node could not serve the call are failures: Unavailable, Unknown,
// Internal, DeadlineExceeded, ResourceExhausted and DataLoss. Every other
// code is an answer from a working node about the request itself
// (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition,
// PermissionDenied, Unauthenticated, OutOfRange, Unimplemented, Canceled,
// Aborted, OK) and counts as a Success for the breaker, though the call
// failed for its caller.
func ClassifyCode(c codes.Code) Outcome {
	switch c {
	case codes.Unavailable, codes.Unknown, codes.Internal, codes.DeadlineExceeded,
		codes.ResourceExhausted, codes.DataLoss:
		return Failure
	}
	return Success
}
