package startup

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// stopComponent is a testComponent whose Stop closes stopping, then runs
// onStop (if set) before it returns: a component whose long-lived work,
// such as the streams it serves, ends when it stops.
type stopComponent struct {
	testComponent
	stopping chan struct{}
	onStop   func()
	once     sync.Once
}

func newStopComponent(onStop func()) *stopComponent {
	return &stopComponent{stopping: make(chan struct{}), onStop: onStop}
}

func (c *stopComponent) Stop(ctx context.Context) error {
	c.once.Do(func() {
		close(c.stopping)
		if c.onStop != nil {
			c.onStop()
		}
	})
	return c.testComponent.Stop(ctx)
}

const (
	followServiceName = "startup.test.Follow"
	methodFollow      = "/" + followServiceName + "/Follow"
)

// followService serves Follow, a server stream that answers its request
// once, then stays open until release is closed: a watch or subscription
// stream that ends only when the component stops.
type followService struct {
	started chan struct{} // one value per stream that sent its first answer
	release chan struct{} // closed to end every stream
}

func newFollowService() *followService {
	return &followService{started: make(chan struct{}, 16), release: make(chan struct{})}
}

type followServer interface{ follow(grpc.ServerStream) error }

func (s *followService) follow(stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	if err := stream.SendMsg(in); err != nil {
		return err
	}
	s.started <- struct{}{}
	select {
	case <-s.release:
		return nil
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
}

var followServiceDesc = grpc.ServiceDesc{
	ServiceName: followServiceName,
	HandlerType: (*followServer)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Follow",
		ServerStreams: true,
		Handler:       func(srv any, stream grpc.ServerStream) error { return srv.(followServer).follow(stream) },
	}},
}

// callFollow opens a Follow stream and reads it to its end: nil when the
// server ended it cleanly.
func callFollow(ctx context.Context, cc grpc.ClientConnInterface) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := cc.NewStream(ctx, &followServiceDesc.Streams[0], methodFollow)
	if err != nil {
		return err
	}
	if err := st.SendMsg(wrapperspb.String("hi")); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	for {
		if err := st.RecvMsg(new(wrapperspb.StringValue)); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// receive returns the next value of ch, failing the test after testTimeout.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("no %s within %s", what, testTimeout)
		var zero T
		return zero
	}
}

// TestStopEndsCallsThatEndWithTheComponent stops a Runner while a call is
// in flight that returns only when the component's Stop runs (the unary
// case is the reproduction of the review, the server stream the usual
// shape of such a call). Draining before Stop held every such stop for the
// whole StopTimeout and then forced it; Stop now runs while the calls
// drain, and the stop is graceful and quick.
func TestStopEndsCallsThatEndWithTheComponent(t *testing.T) {
	m := etcdtest.Start(t)
	for _, tc := range []struct {
		name    string
		call    func(ctx context.Context, h *running) error
		started func(h *running, fs *followService) <-chan struct{}
		release func(h *running, fs *followService) chan struct{}
	}{
		{"unary",
			func(ctx context.Context, h *running) error { return callUnary(ctx, h.conn, methodBlock) },
			func(h *running, _ *followService) <-chan struct{} { return h.svc.started },
			func(h *running, _ *followService) chan struct{} { return h.svc.release }},
		{"server stream",
			func(ctx context.Context, h *running) error { return callFollow(ctx, h.conn) },
			func(_ *running, fs *followService) <-chan struct{} { return fs.started },
			func(_ *running, fs *followService) chan struct{} { return fs.release }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("querynode")
			cfg.LameDuck = 0 // the lame duck has tests of its own
			fs := newFollowService()
			var h *running
			comp := newStopComponent(func() { close(tc.release(h, fs)) })
			h = startRunnerWith(t, m.Client, nil, cfg, comp,
				func(r grpc.ServiceRegistrar) { r.RegisterService(&followServiceDesc, fs) })
			h.waitState(StateHealthy)

			callErr := make(chan error, 1)
			go func() { callErr <- tc.call(testCtx(t), h) }()
			receive(t, tc.started(h, fs), "call started")

			start := time.Now()
			err := h.stop()
			took := time.Since(start)
			require.NoError(t, err, "a graceful stop, not a forced one (took %s)", took)
			require.Less(t, took, cfg.StopTimeout/2, "the stop does not wait for StopTimeout")
			require.NoError(t, receive(t, callErr, "end of the call"), "the call ends cleanly")
			require.Equal(t, []string{"Init", "Start", "Stop"}, comp.Calls())
			require.Equal(t, StateStopped, h.r.State())
		})
	}
}

// TestStopOrder follows one graceful stop step by step on a fake clock:
// Stopping=true is in etcd while the process still serves (the lame duck),
// calls are refused only after the lame-duck wait, and the component's
// Stop starts while a call is still in flight.
func TestStopOrder(t *testing.T) {
	m := etcdtest.Start(t)
	clock := clockwork.NewFakeClock()
	cfg := testConfig("querynode")
	cfg.LameDuck = 3 * time.Second
	events := watch(t, m.Client, testSessionConfig(), "querynode")
	comp := newStopComponent(nil)
	h := startRunner(t, m.Client, nil, cfg, comp, WithClock(clock))
	h.waitState(StateHealthy)
	require.Equal(t, session.EventAdd, nextEvent(t, events).Type)
	history := collect(h.r.Subscribe(testCtx(t)))

	inFlight := make(chan error, 1)
	go func() { inFlight <- callUnary(testCtx(t), h.conn, methodBlock) }()
	receive(t, h.svc.started, "Block started")

	h.cancel()
	ev := nextEvent(t, events)
	require.Equal(t, session.EventUpdate, ev.Type)
	require.True(t, ev.Session.Stopping, "1. Stopping=true is written first")
	require.Equal(t, StateHealthy, h.r.State(), "2. the lame duck: still Healthy")
	require.Equal(t, hServing, h.health(""))
	require.NoError(t, callUnary(testCtx(t), h.conn, methodEcho), "2. calls are still served")

	require.NoError(t, clock.BlockUntilContext(testCtx(t), 1), "the lame-duck timer")
	clock.Advance(cfg.LameDuck)
	h.waitState(StateStopping)
	require.Equal(t, hNotServing, h.health(""), "3. NOT_SERVING")
	got, ok := StateFromError(callUnary(testCtx(t), h.conn, methodEcho))
	require.True(t, ok, "3. new calls are refused")
	require.Equal(t, StateStopping, got)

	receive(t, comp.stopping, "the component's Stop")
	select {
	case err := <-inFlight:
		t.Fatalf("4. the call in flight ended (%v) before the component's Stop began", err)
	case err := <-h.errc:
		t.Fatalf("Run returned while a call was in flight: %v", err)
	default:
	}
	close(h.svc.release)
	require.NoError(t, receive(t, inFlight, "end of the call"), "4. the call in flight completes")
	require.NoError(t, h.wait(), "graceful")
	require.Equal(t, session.EventDel, nextEvent(t, events).Type, "6. the session is revoked")
	require.Equal(t, []State{StateHealthy, StateStopping, StateStopped}, states(<-history))
}

// TestLameDuck checks when the lame-duck wait is paid, on a fake clock: a
// stop that waits cannot end before the clock is advanced.
func TestLameDuck(t *testing.T) {
	m := etcdtest.Start(t)
	const lameDuck = 2 * time.Second
	start := func(t *testing.T, lame time.Duration) (*running, *clockwork.FakeClock) {
		clock := clockwork.NewFakeClock()
		cfg := testConfig("querynode")
		cfg.LameDuck = lame
		h := startRunner(t, m.Client, nil, cfg, &testComponent{}, WithClock(clock))
		h.waitState(StateHealthy)
		return h, clock
	}

	t.Run("skipped when no call was ever made", func(t *testing.T) {
		h, _ := start(t, lameDuck)
		require.Equal(t, hServing, h.health(""), "health checks are not calls")
		require.NoError(t, h.stop(), "returns without the clock moving")
	})
	t.Run("skipped when the last call ended a lame-duck period ago", func(t *testing.T) {
		h, clock := start(t, lameDuck)
		require.NoError(t, callUnary(testCtx(t), h.conn, methodEcho))
		clock.Advance(lameDuck)
		require.NoError(t, h.stop())
	})
	t.Run("skipped when zero", func(t *testing.T) {
		h, _ := start(t, 0)
		require.NoError(t, callUnary(testCtx(t), h.conn, methodEcho))
		require.NoError(t, h.stop())
	})
	t.Run("paid after a recent call", func(t *testing.T) {
		h, clock := start(t, lameDuck)
		require.NoError(t, callUnary(testCtx(t), h.conn, methodEcho))
		clock.Advance(lameDuck - time.Millisecond)
		h.cancel()
		require.NoError(t, clock.BlockUntilContext(testCtx(t), 1), "the lame-duck timer")
		clock.Advance(lameDuck - time.Nanosecond)
		require.Equal(t, StateHealthy, h.r.State(), "still in the lame duck")
		clock.Advance(time.Nanosecond)
		h.waitState(StateStopping)
		require.NoError(t, h.wait())
	})
	t.Run("paid with a call in flight", func(t *testing.T) {
		h, clock := start(t, lameDuck)
		inFlight := make(chan error, 1)
		go func() { inFlight <- callUnary(testCtx(t), h.conn, methodBlock) }()
		receive(t, h.svc.started, "Block started")
		clock.Advance(time.Hour) // however long it has been in flight
		h.cancel()
		require.NoError(t, clock.BlockUntilContext(testCtx(t), 1), "the lame-duck timer")
		require.Equal(t, StateHealthy, h.r.State())
		clock.Advance(lameDuck)
		h.waitState(StateStopping)
		close(h.svc.release)
		require.NoError(t, receive(t, inFlight, "end of the call"))
		require.NoError(t, h.wait())
	})
	t.Run("ForceStop cuts it short", func(t *testing.T) {
		h, clock := start(t, lameDuck)
		require.NoError(t, callUnary(testCtx(t), h.conn, methodEcho))
		h.cancel()
		require.NoError(t, clock.BlockUntilContext(testCtx(t), 1), "the lame-duck timer")
		h.r.ForceStop()
		require.ErrorIs(t, h.wait(), ErrForcedStop)
		require.Equal(t, StateStopped, h.r.State())
		require.Empty(t, listSessions(t, h, "querynode"), "the session is revoked even so")
	})
}

func TestGateBusyWithin(t *testing.T) {
	m := machineIn(t, StateHealthy)
	clock := m.clock.(*clockwork.FakeClock)
	g := newGate(m, nil)
	const d = time.Second
	require.False(t, g.busyWithin(d), "no call yet")

	require.NoError(t, g.enter())
	require.True(t, g.busyWithin(d), "a call in flight")
	clock.Advance(time.Hour)
	require.True(t, g.busyWithin(d), "a call in flight, however old")
	g.leave()
	require.True(t, g.busyWithin(d), "a call ended just now")
	clock.Advance(d - time.Nanosecond)
	require.True(t, g.busyWithin(d))
	clock.Advance(time.Nanosecond)
	require.False(t, g.busyWithin(d), "the last call ended d ago")

	_, err := m.transition(StateAbnormal, "test")
	require.NoError(t, err)
	require.Error(t, g.enter())
	require.False(t, g.busyWithin(d), "a refused call is no activity")
}

func TestConfigLameDuck(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Session.ServerName = "querynode"
	require.Equal(t, time.Second, cfg.LameDuck)
	cfg.LameDuck = 0
	require.NoError(t, cfg.Validate(), "zero: no wait")
	cfg.LameDuck = -time.Second
	require.ErrorContains(t, cfg.Validate(), "LameDuck (-1s) must be ≥ 0")
}
