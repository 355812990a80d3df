package startup

import (
	"time"

	"github.com/cockroachdb/errors"
)

// ErrStopped is returned by WaitForState when the Runner reached
// StateStopped without passing through the awaited state.
var ErrStopped = errors.New("startup: runner stopped")

// ErrAlreadyRun is returned by Run when the Runner was run before: a
// Runner runs once.
var ErrAlreadyRun = errors.New("startup: runner already run")

// ErrClosed is returned by Run when the Runner was closed before Run.
var ErrClosed = errors.New("startup: runner closed")

// ErrForcedStop is returned (wrapped) by Run when the graceful stop was cut
// short, by ForceStop or because StopTimeout elapsed: calls in flight, the
// component's Stop or the gRPC server's graceful stop were abandoned.
var ErrForcedStop = errors.New("startup: stop forced before calls drained")

// ErrDependencyTimeout is returned (as a *DependencyTimeoutError) by Run
// under DependencyPolicy Strict when a required dependency was not online
// within DependencyTimeout; errors.Is matches it.
var ErrDependencyTimeout = errors.New("startup: dependency not online in time")

// DependencyTimeoutError names the role that was not online in time.
type DependencyTimeoutError struct {
	Role    string
	Timeout time.Duration
}

// Error names the role and the timeout.
func (e *DependencyTimeoutError) Error() string {
	return "startup: dependency " + e.Role + " not online within " + e.Timeout.String()
}

// Is makes errors.Is(err, ErrDependencyTimeout) true.
func (e *DependencyTimeoutError) Is(target error) bool { return target == ErrDependencyTimeout }
