package clientmanager

import (
	"context"
	"time"

	"github.com/jonboulle/clockwork"
)

// withTimeout is context.WithTimeout on clock. With the real clock it is
// exactly that, so the deadline reaches the server. With a fake clock the
// timeout is a timer of that clock, stopped by cancel (clockwork.WithTimeout
// would leave it among the clock's waiters until it fires); the context
// then has no deadline, and its cause is context.DeadlineExceeded when the
// timer fired.
func withTimeout(parent context.Context, clock clockwork.Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if _, fake := clock.(*clockwork.FakeClock); !fake {
		return context.WithTimeout(parent, d)
	}
	ctx, cancel := context.WithCancelCause(parent)
	t := clock.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// monoClock is the real clock with a cheaper Since: time.Since reads only
// the monotonic clock when t carries a monotonic reading, as every Now of
// the real clock does, where clockwork's Since reads the wall clock too.
// A call's latency is one Since.
type monoClock struct{ clockwork.Clock }

func (monoClock) Since(t time.Time) time.Duration { return time.Since(t) }
