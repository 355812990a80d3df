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
