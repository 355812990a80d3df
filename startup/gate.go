package startup

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// ErrorDomain is the Domain of the errdetails.ErrorInfo a gated call
	// carries.
	ErrorDomain = "clientmanager.coordkit.dev"
	// ReasonNotServing is the Reason of that ErrorInfo; its Metadata
	// "state" holds the state's name.
	ReasonNotServing = "NOT_SERVING"
	// healthPrefix is the health service's method prefix, never gated.
	healthPrefix = "/grpc.health.v1.Health/"
)

// gate lets calls through only in StateHealthy and counts the calls it let
// through that have not returned yet, so a stop can wait for them. It also
// remembers when the count last fell to zero, so a stop can tell whether
// anyone has been calling: the clock is read only then, never while calls
// overlap.
type gate struct {
	m        *machine
	methods  map[string]struct{} // allowlisted full method names
	services map[string]struct{} // allowlisted "/pkg.Service/" prefixes
	rejects  [len(stateNames)]error
	epoch    time.Time // on m's clock, just before the gate was made

	inflight atomic.Int64
	lastIdle atomic.Int64 // time since epoch when inflight last fell to 0; 0: never
	draining atomic.Bool
	zero     chan struct{} // capacity 1: in-flight reached 0 while draining
}

func newGate(m *machine, allowlist []string) *gate {
	g := &gate{
		m:        m,
		methods:  make(map[string]struct{}),
		services: make(map[string]struct{}),
		// A nanosecond before now, so that a call ended at once (on a fake
		// clock that never moved) is not mistaken for none.
		epoch: m.clock.Now().Add(-time.Nanosecond),
		zero:  make(chan struct{}, 1),
	}
	for _, name := range allowlist {
		if strings.HasSuffix(name, "/") {
			g.services[name] = struct{}{}
		} else {
			g.methods[name] = struct{}{}
		}
	}
	for i := range g.rejects {
		g.rejects[i] = notServingError(State(i))
	}
	return g
}

// notServingError is the status of a call rejected in state s.
func notServingError(s State) error {
	st := status.New(codes.Unavailable, "startup: not serving in state "+s.String())
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   ReasonNotServing,
		Domain:   ErrorDomain,
		Metadata: map[string]string{"state": s.String()},
	})
	if err != nil {
		return st.Err()
	}
	return withInfo.Err()
}

// StateFromError returns the state of the process that rejected a call
// because it was not serving, read from the call's status details.
func StateFromError(err error) (State, bool) {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return 0, false
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if ok && info.GetReason() == ReasonNotServing && info.GetDomain() == ErrorDomain {
			return ParseState(info.GetMetadata()["state"])
		}
	}
	return 0, false
}

// allowed reports whether method is served in every state.
func (g *gate) allowed(method string) bool {
	if strings.HasPrefix(method, healthPrefix) {
		return true
	}
	if _, ok := g.methods[method]; ok {
		return true
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		_, ok := g.services[method[:i+1]]
		return ok
	}
	return false
}

// enter admits a call in StateHealthy; leave must follow an admission.
func (g *gate) enter() error {
	g.inflight.Add(1)
	if s := g.m.current(); s != StateHealthy {
		g.release(false)
		if s >= 0 && int(s) < len(g.rejects) {
			return g.rejects[s]
		}
		return notServingError(s)
	}
	return nil
}

// leave ends an admitted call.
func (g *gate) leave() { g.release(true) }

// release takes a call off the count; admitted says whether it was served,
// and so whether falling to zero is the end of activity worth its time.
func (g *gate) release(admitted bool) {
	if g.inflight.Add(-1) != 0 {
		return
	}
	if admitted {
		g.lastIdle.Store(int64(g.m.clock.Since(g.epoch)))
	}
	if g.draining.Load() {
		select {
		case g.zero <- struct{}{}:
		default:
		}
	}
}

// busyWithin reports whether an admitted call was in flight at some
// moment of the last d: one is in flight now, or the last one ended less
// than d ago. Refused calls do not count. (One refused while the last
// admitted call ended can hide that end: both need a state other than
// Healthy, and the cost is a lame-duck wait skipped.)
func (g *gate) busyWithin(d time.Duration) bool {
	if g.inflight.Load() > 0 {
		return true
	}
	last := g.lastIdle.Load()
	return last != 0 && g.m.clock.Since(g.epoch)-time.Duration(last) < d
}

// drain waits until no admitted call is in flight. It reports false when
// done was closed first. The state must already refuse calls.
func (g *gate) drain(done <-chan struct{}) bool {
	g.draining.Store(true)
	for g.inflight.Load() > 0 {
		select {
		case <-g.zero:
		case <-done:
			return false
		}
	}
	return true
}

func (g *gate) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if g.allowed(info.FullMethod) {
		return handler(ctx, req)
	}
	if err := g.enter(); err != nil {
		return nil, err
	}
	defer g.leave()
	return handler(ctx, req)
}

func (g *gate) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if g.allowed(info.FullMethod) {
		return handler(srv, ss)
	}
	if err := g.enter(); err != nil {
		return err
	}
	defer g.leave()
	return handler(srv, ss)
}
