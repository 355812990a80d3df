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
// a failed one leaves here its server's retry pushback and what its
// trailer tells of its fate (notePushback), for Invoke to read once the
// attempt is over. Its parent is already bound to client's life
// (Client.bind), so calls through client's Conn need not bind it again.
type attemptCtx struct {
	context.Context
	client   *Client
	pushback atomic.Int64

	// single: the attempt makes exactly one call (RoleConn's unary
	// calls), so a failed call's fate is the attempt's.
	single   bool
	began    atomic.Int32 // calls begun under the attempt (begin)
	noted    atomic.Int32 // failed calls noted by notePushback
	unsent   atomic.Int32 // of those, calls that never had a transport stream
	answered atomic.Int32 // of those, calls whose server sent its own status
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

// begin counts a call made under the attempt, once it is about to reach
// its connection's transport. Only when every call of an attempt is
// counted (or the attempt makes one, single) can the calls notePushback
// saw unsent be all of them: a connection should count both its unary
// calls and its streams.
func (a *attemptCtx) begin() { a.began.Add(1) }

// notePushback records what the trailer of a failed call, captured with
// grpc.Trailer, says: the server's retry pushback, if any; whether the
// server sent its own status (a grpc.ClientConn fills the trailer of a
// Trailers-Only answer, which carries its content-type); and whether the
// call never had a transport stream at all. A grpc.ClientConn leaves the
// trailer nil only then: the call failed before it was sent.
func (a *attemptCtx) notePushback(md metadata.MD) {
	a.noted.Add(1)
	switch {
	case md == nil:
		a.unsent.Add(1)
	case md.Len() > 0:
		a.answered.Add(1)
	}
	if v := parsePushback(md); v != noPushback {
		a.pushback.Store(v)
	}
}

// unsentCalls reports whether the attempt's calls all failed before they
// were sent, as far as their trailers tell (see notePushback); meaningful
// only over a grpc.ClientConn.
func (a *attemptCtx) unsentCalls() bool {
	n := a.unsent.Load()
	return n > 0 && (a.single || n == a.began.Load())
}

// unanswered reports whether the attempt's failed calls were noted and
// none got a status from its server: the failure was the client's own
// (such as a message over the size limit), as far as their trailers tell;
// meaningful only over a grpc.ClientConn.
func (a *attemptCtx) unanswered() bool {
	return a.noted.Load() > 0 && a.answered.Load() == 0
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
