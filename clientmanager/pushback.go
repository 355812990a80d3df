package clientmanager

import (
	"context"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"
)

// PushbackTrailer is the trailing metadata key by which a server tells
// its clients how long to wait before they retry (gRFC A6): a
// non-negative integer of milliseconds, or a negative or malformed value
// for "do not retry".
const PushbackTrailer = "grpc-retry-pushback-ms"

// Values of attemptCtx.pushback besides a delay in ms.
const (
	noPushback   = math.MinInt64 // no failed call of the attempt carried one
	stopPushback = -1            // negative or malformed: do not retry
)

// attemptKey finds the attemptCtx of an Invoke attempt in a context.
type attemptKey struct{}

// attemptCtx is the context of one attempt of Invoke on client. Unary
// calls made through a Client's Conn under it capture their trailers, and
// a failed one leaves its server's retry pushback here for Invoke to read
// once the attempt is over. Its parent is already bound to client's life
// (Client.bind), so calls through client's Conn need not bind it again.
type attemptCtx struct {
	context.Context
	client   *Client
	pushback atomic.Int64
}

func newAttemptCtx(bound context.Context, c *Client) *attemptCtx {
	a := &attemptCtx{Context: bound, client: c}
	a.pushback.Store(noPushback)
	return a
}

// Value returns the attemptCtx itself for attemptKey.
func (a *attemptCtx) Value(key any) any {
	if key == (attemptKey{}) {
		return a
	}
	return a.Context.Value(key)
}

// attemptOf returns the attemptCtx ctx was made under, or nil.
func attemptOf(ctx context.Context) *attemptCtx {
	a, _ := ctx.Value(attemptKey{}).(*attemptCtx)
	return a
}

// notePushback records the pushback of a failed call's trailer, if any.
func (a *attemptCtx) notePushback(md metadata.MD) {
	if v := parsePushback(md); v != noPushback {
		a.pushback.Store(v)
	}
}

// retryDelay returns what the attempt's failed calls asked for: a delay
// before the retry (ok), or stop (do not retry); neither when no server
// sent a pushback.
func (a *attemptCtx) retryDelay() (d time.Duration, ok, stop bool) {
	switch v := a.pushback.Load(); {
	case v == noPushback:
		return 0, false, false
	case v < 0:
		return 0, false, true
	default:
		return time.Duration(v) * time.Millisecond, true, false
	}
}

// parsePushback reads PushbackTrailer from md: noPushback when absent,
// stopPushback when negative, malformed or repeated, else the delay in ms.
func parsePushback(md metadata.MD) int64 {
	v := md.Get(PushbackTrailer)
	switch {
	case len(v) == 0:
		return noPushback
	case len(v) > 1:
		return stopPushback
	}
	ms, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || ms < 0 {
		return stopPushback
	}
	return min(ms, int64(math.MaxInt64/time.Millisecond))
}
