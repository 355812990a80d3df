package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/identity"
)

type ctxKey struct{}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// An attempt's own deadline ends its context on the manager's clock
// whether its timer was armed before the deadline (Done) or only asked
// after it (Err); the caller's values and the request ID stay visible.
func TestAttemptCtxEndsAtItsDeadline(t *testing.T) {
	for _, armEarly := range []bool{true, false} {
		t.Run(map[bool]string{true: "armed", false: "asked after"}[armEarly], func(t *testing.T) {
			clock := clockwork.NewFakeClock()
			parent := context.WithValue(context.Background(), ctxKey{}, "v")
			a := newAttemptCtx(parent, nil, "rid")
			a.setTimeout(clock, clock.Now(), time.Second)
			defer a.end()

			_, has := a.Deadline()
			require.False(t, has, "a fake clock's deadline is not reported")
			require.NoError(t, a.Err())
			require.Equal(t, "v", a.Value(ctxKey{}))
			require.Equal(t, "rid", identity.RequestIDFrom(a))
			require.Same(t, a, attemptOf(a))
			var done <-chan struct{}
			if armEarly {
				done = a.Done()
				require.False(t, closed(done))
			}
			clock.Advance(999 * time.Millisecond)
			require.NoError(t, a.Err(), "not before the deadline")
			clock.Advance(time.Millisecond)
			if armEarly {
				require.Eventually(t, func() bool { return closed(done) }, testTimeout, time.Millisecond)
			}
			require.Error(t, a.Err())
			require.True(t, closed(a.Done()))
			require.ErrorIs(t, context.Cause(a), context.DeadlineExceeded)
			require.Equal(t, "v", a.Value(ctxKey{}), "values are the caller's once armed too")
		})
	}
}

// With the real clock the attempt's own deadline is not reported (a gRPC
// call sends only the caller's), contexts derived from the attempt's end
// with it, and ending the attempt ends them and stops the timer.
func TestAttemptCtxRealClock(t *testing.T) {
	a := newAttemptCtx(context.Background(), nil, "")
	start := time.Now()
	a.setTimeout(clockwork.NewRealClock(), start, time.Hour)
	_, ok := a.Deadline()
	require.False(t, ok, "the caller set no deadline")
	parent, cancel := context.WithDeadline(context.Background(), start.Add(2*time.Hour))
	defer cancel()
	withCaller := newAttemptCtx(parent, nil, "")
	withCaller.setTimeout(clockwork.NewRealClock(), start, time.Hour)
	dl, ok := withCaller.Deadline()
	require.True(t, ok)
	require.Equal(t, start.Add(2*time.Hour), dl, "the caller's, not the attempt's")
	withCaller.end()

	child, cancel := context.WithCancel(a)
	defer cancel()
	fired := make(chan struct{})
	stop := context.AfterFunc(a, func() { close(fired) })
	defer stop()
	require.NoError(t, child.Err())
	a.end()
	require.Eventually(t, func() bool { return closed(fired) }, testTimeout, time.Millisecond)
	require.ErrorIs(t, child.Err(), context.Canceled)
	require.ErrorIs(t, a.Err(), context.Canceled)
}

// An attempt that ended before anything waited for it arms no timer, and
// its context is ended when asked later.
func TestAttemptCtxEndedUnarmed(t *testing.T) {
	a := newAttemptCtx(context.Background(), nil, "")
	a.setTimeout(clockwork.NewRealClock(), time.Now(), time.Hour)
	a.end()
	require.Equal(t, timerEnded, a.state.Load(), "no timer armed")
	require.True(t, closed(a.Done()))
	require.ErrorIs(t, a.Err(), context.Canceled)
}

// The caller's cancellation ends the attempt's context, armed or not.
func TestAttemptCtxCallerCancels(t *testing.T) {
	for _, arm := range []bool{true, false} {
		parent, cancel := context.WithCancel(context.Background())
		a := newAttemptCtx(parent, nil, "")
		a.setTimeout(clockwork.NewRealClock(), time.Now(), time.Hour)
		if arm {
			_ = a.Done()
		}
		cancel()
		require.ErrorIs(t, a.Err(), context.Canceled)
		require.True(t, closed(a.Done()))
		a.end()
	}
}

// Without a deadline of its own the attempt's context is the caller's.
func TestAttemptCtxWithoutTimeout(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	a := newAttemptCtx(parent, nil, "")
	pdl, _ := parent.Deadline()
	dl, ok := a.Deadline()
	require.True(t, ok)
	require.Equal(t, pdl, dl)
	require.Equal(t, parent.Done(), a.Done())
	a.end()
	require.NoError(t, a.Err())
}
