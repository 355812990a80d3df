package clientmanager

import (
	"time"

	"google.golang.org/grpc"
)

// CallOption changes how one call of Invoke, InvokeNode or RoleConn is
// made. A CallOption is also a grpc.CallOption, so that it can be passed
// to a generated stub's method called through RoleConn; other
// connections ignore it.
type CallOption struct {
	grpc.EmptyCallOption
	apply func(callOptions) callOptions // by value: the options of a call stay on its stack
}

// callOptions is what the CallOptions of one call set.
type callOptions struct {
	idempotent     bool
	attempts       int           // 0: Config.CallAttempts
	attemptTimeout time.Duration // 0: derived from CallTimeout and the caller's deadline
	single         bool          // the function makes exactly one call (RoleConn)
}

// Idempotent marks the call as safe to make more than once: besides the
// failures that provably did not reach the node's application, it is
// retried after any Unavailable or Aborted answer, after its own attempt
// timeout, and when its node left while it ran (see Invoke). Use it for
// reads, and for writes the server deduplicates.
func Idempotent() CallOption { return CallOption{apply: setIdempotent} }

func setIdempotent(o callOptions) callOptions {
	o.idempotent = true
	return o
}

// Attempts sets how many attempts the call may make, in place of
// Config.CallAttempts; n < 1 counts as 1 (no retry).
func Attempts(n int) CallOption {
	return CallOption{apply: func(o callOptions) callOptions {
		o.attempts = max(n, 1)
		return o
	}}
}

// AttemptTimeout bounds each attempt of the call by d, in place of the
// bound derived from Config.CallTimeout and the caller's deadline (see
// Invoke); the caller's deadline still bounds every attempt. d ≤ 0 keeps
// the derived bound.
func AttemptTimeout(d time.Duration) CallOption {
	return CallOption{apply: func(o callOptions) callOptions {
		if d > 0 {
			o.attemptTimeout = d
		}
		return o
	}}
}

// buildCallOptions applies opts.
func buildCallOptions(opts []CallOption) callOptions {
	var o callOptions
	for _, opt := range opts {
		if opt.apply != nil {
			o = opt.apply(o)
		}
	}
	return o
}

// grpcCallOptions applies the CallOptions among a stub's grpc options.
func grpcCallOptions(opts []grpc.CallOption) callOptions {
	var o callOptions
	for _, opt := range opts {
		if co, ok := opt.(CallOption); ok && co.apply != nil {
			o = co.apply(o)
		}
	}
	return o
}
