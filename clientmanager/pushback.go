package clientmanager

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/coordkit/clientmanager/identity"
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
// calls made through a Client's Conn under it carry its request ID and
// capture their trailers, and a failed one leaves here its server's retry
// pushback and what its trailer tells of its fate (notePushback), for
// Invoke to read once the attempt is over.
//
// When the attempt has a time of its own, shorter than the caller's
// (setTimeout), the attemptCtx ends at its deadline. Its timer is armed
// only once something waits for its end (Done, a context derived from it,
// context.AfterFunc): a call that returns without waiting costs no timer.
// Deadline reports the caller's deadline only: the attempt's bound is the
// client's own, as a per-try timeout is a proxy's. A gRPC call under the
// attempt sends the caller's deadline (grpc-timeout) and no other; when
// the attempt's time runs out the call is cancelled, which the server
// sees as the stream's cancellation at once. So a call without a deadline
// of its caller costs the server no timer and its header no timeout, and
// a handler that calls onward inherits the time its caller set, not the
// share of it one attempt had.
type attemptCtx struct {
	context.Context // the caller's
	client          *Client
	requestID       string
	pushback        atomic.Int64
	// carried is the identity the attempt carries as its outgoing
	// metadata (carry), nil when it carries none.
	carried *identity.Target

	// The attempt's own deadline; zero when the caller's is the
	// attempt's. With a fake clock it bounds the attempt on that clock
	// but is not reported by Deadline.
	deadline time.Time
	clock    clockwork.Clock
	// The context that ends at deadline, made on first need (timed).
	mu     sync.Mutex
	timer  context.Context
	cancel context.CancelFunc
	state  atomic.Int32 // timerNone, timerArmed, timerEnded

	// left: a call on client was cut short because the node left.
	left atomic.Bool

	// The first unary call under the attempt captures its trailer here,
	// with its call options in optBuf, so that the usual attempt (one
	// call) allocates nothing for it; later calls allocate their own.
	claimed atomic.Bool
	trailer metadata.MD
	optBuf  [3]grpc.CallOption

	began    atomic.Int32 // calls begun under the attempt (begin)
	noted    atomic.Int32 // failed calls noted by notePushback
	unsent   atomic.Int32 // of those, calls that never had a transport stream
	answered atomic.Int32 // of those, calls whose server sent its own status
	// single: the attempt makes exactly one call (RoleConn's unary
	// calls), so a failed call's fate is the attempt's.
	single bool
	real   bool // clock is the real one
}

// States of an attemptCtx's timer.
const (
	timerNone  int32 = iota // not armed: nothing waited for the attempt's end
	timerArmed              // timer holds the context ending at the deadline
	timerEnded              // the attempt ended before its timer was armed
)

func newAttemptCtx(parent context.Context, c *Client, requestID string) *attemptCtx {
	a := &attemptCtx{Context: parent, client: c, requestID: requestID}
	a.pushback.Store(noPushback)
	return a
}

// carry makes t the attempt's outgoing metadata when the caller's
// context has none: a unary call on t's connection made with the
// attemptCtx itself then only appends its request ID (see
// clientConn.Invoke). It must be called before the attempt's function
// runs. (A caller's context with outgoing metadata costs a copy of it
// here, as it does again on each call.)
func (a *attemptCtx) carry(t *identity.Target) {
	if _, ok := metadata.FromOutgoingContext(a.Context); !ok {
		a.carried = t
	}
}

// setTimeout bounds the attempt by d from now, the time on clock; the
// caller's context still bounds it too. It must be called before the
// attempt's function runs, and end after it returned.
func (a *attemptCtx) setTimeout(clock clockwork.Clock, now time.Time, d time.Duration) {
	a.clock = clock
	_, fake := clock.(*clockwork.FakeClock)
	a.real = !fake
	a.deadline = now.Add(d)
}

// end ends the attempt: its context is cancelled, and its timer, if
// armed, stopped.
func (a *attemptCtx) end() {
	if a.deadline.IsZero() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.state.Load() {
	case timerArmed:
		a.cancel()
	case timerNone:
		a.state.Store(timerEnded)
	}
}

// timed returns the context that ends at the attempt's deadline, the
// caller's end, or the attempt's end, whichever comes first; it arms its
// timer on the first call.
func (a *attemptCtx) timed() context.Context {
	if a.state.Load() == timerArmed {
		return a.timer
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.state.Load() {
	case timerArmed:
		return a.timer
	case timerEnded:
		a.timer, a.cancel = context.WithCancel(a.Context)
		a.cancel()
	default:
		switch left := a.clock.Until(a.deadline); {
		case a.real:
			a.timer, a.cancel = context.WithDeadline(a.Context, a.deadline)
		case left <= 0: // as withTimeout's timer would, at once
			var cancel context.CancelCauseFunc
			a.timer, cancel = context.WithCancelCause(a.Context)
			cancel(context.DeadlineExceeded)
			a.cancel = func() {}
		default:
			a.timer, a.cancel = withTimeout(a.Context, a.clock, left)
		}
	}
	a.state.Store(timerArmed)
	return a.timer
}

// Deadline implements context.Context: the caller's deadline, never the
// attempt's own (see attemptCtx).
func (a *attemptCtx) Deadline() (time.Time, bool) {
	return a.Context.Deadline()
}

// Done implements context.Context; with a deadline of its own it arms the
// attempt's timer.
func (a *attemptCtx) Done() <-chan struct{} {
	if a.deadline.IsZero() {
		return a.Context.Done()
	}
	return a.timed().Done()
}

// Err implements context.Context. It arms no timer until the attempt's
// deadline has passed or the attempt has ended: before, its error is the
// caller's.
func (a *attemptCtx) Err() error {
	switch {
	case a.deadline.IsZero():
		return a.Context.Err()
	case a.state.Load() != timerNone:
		return a.timed().Err()
	}
	if err := a.Context.Err(); err != nil {
		return err
	}
	if a.clock.Now().Before(a.deadline) {
		return nil
	}
	return a.timed().Err() // past the deadline: the timer ends it at once
}

// Value returns the attemptCtx itself for attemptKey, the request ID
// for identity's key, and the carried identity as the outgoing metadata.
func (a *attemptCtx) Value(key any) any {
	switch key {
	case attemptKey{}:
		return a
	case identity.RequestIDKey():
		if a.requestID != "" {
			return a.requestID
		}
	}
	if a.carried != nil {
		// Its context holds the outgoing metadata only; the caller's
		// has none (carry).
		if v := a.carried.Context().Value(key); v != nil {
			return v
		}
	}
	if a.state.Load() == timerArmed {
		return a.timer.Value(key) // context's own keys find the timer's
	}
	return a.Context.Value(key)
}

// captureTrailer returns where a unary call's trailer is captured and
// opts with the option that captures it.
func (a *attemptCtx) captureTrailer(opts []grpc.CallOption) (*metadata.MD, []grpc.CallOption) {
	if len(opts) < len(a.optBuf) && a.claimed.CompareAndSwap(false, true) {
		return &a.trailer, append(append(a.optBuf[:0], opts...), grpc.Trailer(&a.trailer))
	}
	trailer := new(metadata.MD)
	return trailer, append(opts[:len(opts):len(opts)], grpc.Trailer(trailer))
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
