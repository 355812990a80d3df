package startup

import (
	"net"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

const (
	hNotServing = healthpb.HealthCheckResponse_NOT_SERVING
	hServing    = healthpb.HealthCheckResponse_SERVING
)

func listSessions(t testing.TB, h *running, role string) []session.Session {
	t.Helper()
	return listSessionsVia(t, h.r.cli, role)
}

func listSessionsVia(t testing.TB, cli *clientv3.Client, role string) []session.Session {
	t.Helper()
	ss, _, err := session.List(testCtx(t), cli, testSessionConfig(), role)
	require.NoError(t, err)
	return ss
}

func TestRunnerLifecycle(t *testing.T) {
	m := etcdtest.Start(t)
	comp := &testComponent{initGate: make(chan struct{}), startGate: make(chan struct{})}
	h := startRunner(t, m.Client, nil, testConfig("querynode"), comp)
	history := collect(h.r.Subscribe(testCtx(t)))

	// Probes answer while the component initialises: NOT_SERVING.
	require.Equal(t, hNotServing, h.health(""))
	require.Equal(t, hNotServing, h.health("querynode"))
	require.Equal(t, StateInitializing, h.r.State())

	close(comp.initGate)
	h.waitState(StateStarting)
	require.Equal(t, hNotServing, h.health(""))
	require.Empty(t, listSessions(t, h, "querynode"), "no session before the component serves")

	close(comp.startGate)
	h.waitState(StateHealthy)
	require.Eventually(t, func() bool { return h.health("") == hServing && h.health("querynode") == hServing },
		testTimeout, 5*time.Millisecond)
	ss := listSessions(t, h, "querynode")
	require.Len(t, ss, 1)
	self := h.r.Session()
	require.Equal(t, h.addr, ss[0].Address, "the listener's address is registered")
	require.Equal(t, self.ServerID, ss[0].ServerID)
	require.Equal(t, self.LeaseID, ss[0].LeaseID)
	require.NotZero(t, self.LeaseID)
	require.NoError(t, callUnary(testCtx(t), h.conn, methodEcho))

	require.NoError(t, h.stop())
	trs := <-history
	require.Equal(t, []State{StateInitializing, StateWaitingDependencies, StateStarting, StateRegistering,
		StateHealthy, StateStopping, StateStopped}, states(trs))
	for i := 1; i < len(trs); i++ {
		require.Equal(t, trs[i-1].To, trs[i].From, "transition %d follows the previous one", i)
		require.False(t, trs[i].At.Before(trs[i-1].At))
	}
	require.Equal(t, []string{"Init", "Start", "Stop"}, comp.Calls())
	require.Empty(t, listSessions(t, h, "querynode"), "the session is revoked")
	require.Equal(t, StateStopped, h.r.State())
}

func TestRunnerPhaseFailures(t *testing.T) {
	m := etcdtest.Start(t)
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		comp  *testComponent
		path  []State
		calls []string
	}{
		{"init", &testComponent{initErr: errBoom},
			[]State{StateInitializing, StateStopping, StateStopped}, []string{"Init"}},
		{"start", &testComponent{startErr: errBoom},
			[]State{StateInitializing, StateWaitingDependencies, StateStarting, StateStopping, StateStopped},
			[]string{"Init", "Start", "Stop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.comp.initGate = make(chan struct{})
			h := startRunner(t, m.Client, nil, testConfig("querynode"), tc.comp)
			history := collect(h.r.Subscribe(testCtx(t)))
			close(tc.comp.initGate)
			require.ErrorIs(t, h.wait(), errBoom)
			require.Equal(t, tc.path, states(<-history))
			require.Equal(t, tc.calls, tc.comp.Calls())
			require.Empty(t, listSessions(t, h, "querynode"))
		})
	}
}

func TestRunnerRunsOnce(t *testing.T) {
	m := etcdtest.Start(t)
	h := startRunner(t, m.Client, nil, testConfig("querynode"), &testComponent{})
	h.waitState(StateHealthy)
	require.Error(t, h.r.Run(testCtx(t), nil, nil), "a server and a listener are required")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	require.ErrorIs(t, h.r.Run(testCtx(t), grpc.NewServer(), lis), ErrAlreadyRun)
	require.NoError(t, h.stop())

	r, err := New(m.Client, nil, testConfig("querynode"), &testComponent{})
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.NoError(t, r.Close(), "Close is idempotent")
	require.ErrorIs(t, r.Run(testCtx(t), grpc.NewServer(), lis), ErrClosed)
	_, ok := <-r.Subscribe(testCtx(t))
	require.False(t, ok, "a closed Runner's subscriptions are closed")
}

func TestRunnerGracefulStop(t *testing.T) {
	m := etcdtest.Start(t)
	events := watch(t, m.Client, testSessionConfig(), "querynode")
	h := startRunner(t, m.Client, nil, testConfig("querynode"), &testComponent{})
	h.waitState(StateHealthy)
	ev := nextEvent(t, events)
	require.Equal(t, session.EventAdd, ev.Type)
	require.Equal(t, h.r.Session().ServerID, ev.Session.ServerID)

	ctx := testCtx(t)
	inFlight := make(chan error, 1)
	go func() { inFlight <- callUnary(ctx, h.conn, methodBlock) }()
	<-h.svc.started

	h.cancel()
	h.waitState(StateStopping)
	require.Equal(t, hNotServing, h.health(""))
	ev = nextEvent(t, events)
	require.Equal(t, session.EventUpdate, ev.Type)
	require.True(t, ev.Session.Stopping, "watchers learn the stop before the session goes")

	err := callUnary(ctx, h.conn, methodEcho)
	require.Equal(t, codes.Unavailable, status.Code(err))
	got, ok := StateFromError(err)
	require.True(t, ok)
	require.Equal(t, StateStopping, got)
	select {
	case err := <-h.errc:
		t.Fatalf("Run returned while a call was in flight: %v", err)
	default:
	}

	close(h.svc.release)
	require.NoError(t, <-inFlight, "the call in flight completes")
	require.NoError(t, h.wait())
	ev = nextEvent(t, events)
	require.Equal(t, session.EventDel, ev.Type)
	require.Equal(t, StateStopped, h.r.State())
}

func TestRunnerForcedStop(t *testing.T) {
	m := etcdtest.Start(t)
	for _, tc := range []struct {
		name  string
		force func(h *running, clock *clockwork.FakeClock)
	}{
		{"StopTimeout", func(h *running, clock *clockwork.FakeClock) {
			require.NoError(t, clock.BlockUntilContext(testCtx(t), 1))
			clock.Advance(h.r.cfg.StopTimeout)
		}},
		{"ForceStop", func(h *running, _ *clockwork.FakeClock) { h.r.ForceStop() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clockwork.NewFakeClock()
			comp := &testComponent{}
			cfg := testConfig("querynode")
			// No lame duck: on the fake clock it would hold the stop
			// before StateStopping (TestLameDuck tests it).
			cfg.LameDuck = 0
			h := startRunner(t, m.Client, nil, cfg, comp, WithClock(clock))
			h.waitState(StateHealthy)
			inFlight := make(chan error, 1)
			go func() { inFlight <- callUnary(testCtx(t), h.conn, methodBlock) }()
			<-h.svc.started

			h.cancel()
			h.waitState(StateStopping)
			tc.force(h, clock)
			require.ErrorIs(t, h.wait(), ErrForcedStop)
			require.Error(t, <-inFlight, "the call in flight is cut")
			require.Equal(t, StateStopped, h.r.State())
			require.Equal(t, []string{"Init", "Start", "Stop"}, comp.Calls())
			require.Empty(t, listSessions(t, h, "querynode"), "the session is revoked even so")
		})
	}
}

func TestRunnerStandBy(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig("rootcoord")
	cfg.Session.Exclusive = true
	ca, cb := &testComponent{}, &testComponent{}
	a := startRunner(t, m.Client, nil, cfg, ca)
	a.waitState(StateHealthy)
	b := startRunner(t, m.Client, nil, cfg, cb)
	b.waitState(StateStandBy)

	require.Equal(t, hNotServing, b.health(""))
	got, ok := StateFromError(callUnary(testCtx(t), b.conn, methodEcho))
	require.True(t, ok)
	require.Equal(t, StateStandBy, got)
	require.Zero(t, cb.activations.Load(), "a standby is not activated")
	require.EqualValues(t, 1, ca.activations.Load())

	stopped := time.Now()
	require.NoError(t, a.stop())
	b.waitState(StateHealthy)
	t.Logf("standby Healthy %s after the active process's graceful stop", time.Since(stopped))
	require.EqualValues(t, 1, cb.activations.Load())
	require.Equal(t, []string{"Init", "Start", "Activate"}, cb.Calls())
	require.Eventually(t, func() bool { return b.health("rootcoord") == hServing }, testTimeout, 5*time.Millisecond)
	require.NoError(t, callUnary(testCtx(t), b.conn, methodEcho))
	require.NoError(t, b.stop())
}

func TestRunnerActivateFailure(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig("rootcoord")
	cfg.Session.Exclusive = true
	errBoom := errors.New("boom")
	h := startRunner(t, m.Client, nil, cfg, &testComponent{activateErr: errBoom})
	require.ErrorIs(t, h.wait(), errBoom)
	require.Equal(t, StateStopped, h.r.State())
	require.Empty(t, listSessions(t, h, "rootcoord"))
}

// TestRunnerPartitionKeepsServing cuts a node from etcd for longer than
// its TTL, so that etcd expires its lease: the node keeps serving (health
// SERVING, calls answered) throughout, and once the partition heals its
// session is registered again under a new lease with the same Incarnation,
// without the Runner ever leaving Healthy.
func TestRunnerPartitionKeepsServing(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoint())
	cli := etcdtest.NewClient(t, proxy.Addr())
	h := startRunner(t, cli, nil, testConfig("querynode"), &testComponent{})
	h.waitState(StateHealthy)
	first := h.r.Session()
	history := collect(h.r.Subscribe(testCtx(t)))

	proxy.Cut(t)
	require.Eventually(t, func() bool { return len(listSessionsVia(t, m.Client, "querynode")) == 0 },
		10*time.Second, 20*time.Millisecond, "etcd expires the lease of the cut node")
	require.Equal(t, StateHealthy, h.r.State())
	require.Equal(t, hServing, h.health(""))
	require.NoError(t, callUnary(testCtx(t), h.conn, methodEcho), "calls are served while cut from etcd")

	proxy.Restore(t)
	require.Eventually(t, func() bool {
		ss := listSessionsVia(t, m.Client, "querynode")
		return len(ss) == 1 && ss[0].LeaseID != first.LeaseID
	}, 15*time.Second, 20*time.Millisecond, "registered again")
	again := h.r.Session()
	require.Equal(t, first.ServerID, again.ServerID)
	require.Equal(t, first.Incarnation, again.Incarnation)
	require.NoError(t, callUnary(testCtx(t), h.conn, methodEcho))
	require.NoError(t, h.stop())
	require.Equal(t, []State{StateHealthy, StateStopping, StateStopped}, states(<-history))
}

// TestRunnerAbnormalAfterLimit: a session that stays unregistered for
// longer than AbnormalAfter turns the component Abnormal (calls rejected),
// and Healthy again once it is registered.
func TestRunnerAbnormalAfterLimit(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoint())
	cli := etcdtest.NewClient(t, proxy.Addr())
	cfg := testConfig("querynode")
	cfg.AbnormalAfter = 500 * time.Millisecond
	h := startRunner(t, cli, nil, cfg, &testComponent{})
	h.waitState(StateHealthy)

	proxy.Cut(t)
	h.waitState(StateAbnormal)
	require.Equal(t, hNotServing, h.health(""))
	got, ok := StateFromError(callUnary(testCtx(t), h.conn, methodEcho))
	require.True(t, ok)
	require.Equal(t, StateAbnormal, got)

	proxy.Restore(t)
	h.waitState(StateHealthy)
	require.NoError(t, callUnary(testCtx(t), h.conn, methodEcho))
	require.NoError(t, h.stop())
}

// TestRunnerSessionExitPolicy: under session.Exit the Runner stops once
// etcd says the lease is gone.
func TestRunnerSessionExitPolicy(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoint())
	cli := etcdtest.NewClient(t, proxy.Addr())
	cfg := testConfig("querynode")
	cfg.SessionConfig.LostPolicy = session.Exit
	comp := &testComponent{}
	h := startRunner(t, cli, nil, cfg, comp)
	h.waitState(StateHealthy)
	history := collect(h.r.Subscribe(testCtx(t)))

	proxy.Cut(t)
	require.Eventually(t, func() bool { return len(listSessionsVia(t, m.Client, "querynode")) == 0 },
		10*time.Second, 20*time.Millisecond, "etcd expires the lease of the cut node")
	proxy.Restore(t)
	require.ErrorIs(t, h.wait(), session.ErrLeaseLost)
	require.Equal(t, []State{StateHealthy, StateAbnormal, StateStopping, StateStopped}, states(<-history))
	require.Equal(t, []string{"Init", "Start", "Stop"}, comp.Calls())
}

func TestRunnerCloseEndsSubscriptions(t *testing.T) {
	m := etcdtest.Start(t)
	r, err := New(m.Client, nil, testConfig("querynode"), &testComponent{})
	require.NoError(t, err)
	sub := r.Subscribe(testCtx(t))
	require.Equal(t, StateInitializing, (<-sub).To)
	require.NoError(t, r.Close())
	_, ok := <-sub
	require.False(t, ok, "Close ends the subscription")
}

// TestRunnerPartitionExclusive cuts the active process of an exclusive
// role from etcd: its active term ends at its local deadline (StandBy,
// Deactivate called), the standby takes over, and when the partition heals
// the old active process registers again as the standby.
func TestRunnerPartitionExclusive(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoint())
	cfg := testConfig("rootcoord")
	cfg.Session.Exclusive = true
	ca := &testComponent{}
	a := startRunner(t, etcdtest.NewClient(t, proxy.Addr()), nil, cfg, ca)
	a.waitState(StateHealthy)
	b := startRunner(t, m.Client, nil, cfg, &testComponent{})
	b.waitState(StateStandBy)
	history := collect(a.r.Subscribe(testCtx(t)))

	proxy.Cut(t)
	a.waitState(StateStandBy)
	require.EqualValues(t, 1, ca.deactivations.Load())
	b.waitState(StateHealthy)
	proxy.Restore(t)
	a.waitState(StateStandBy)
	require.EqualValues(t, 1, ca.activations.Load(), "a standby is not activated")
	got, ok := StateFromError(callUnary(testCtx(t), a.conn, methodEcho))
	require.True(t, ok)
	require.Equal(t, StateStandBy, got)

	require.NoError(t, b.stop())
	a.waitState(StateHealthy)
	require.EqualValues(t, 2, ca.activations.Load())
	require.NoError(t, a.stop())
	require.Equal(t, []State{StateHealthy, StateStandBy, StateHealthy, StateStopping, StateStopped},
		states(<-history))
}
