package startup

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
)

// testConfig is a Config with the short TTL and quick retries of the
// tests.
func testConfig(role string) Config {
	cfg := DefaultConfig()
	cfg.Session = session.Session{ServerName: role, Version: "2.4.0"}
	cfg.SessionConfig = testSessionConfig()
	cfg.DependencyTimeout = time.Second
	cfg.StopTimeout = 5 * time.Second
	return cfg
}

func testSessionConfig() session.Config {
	sc := session.DefaultConfig()
	sc.RootPath = "startuptest/meta"
	sc.TTL = 2 * time.Second
	sc.RequestTimeout = time.Second
	sc.Retry.Initial = 10 * time.Millisecond
	sc.Retry.Max = 200 * time.Millisecond
	sc.ReregisterBackoff.Initial = 50 * time.Millisecond
	sc.ReregisterBackoff.Max = 500 * time.Millisecond
	return sc
}

// testComponent records its calls; Init and Start wait for their gate
// when it is set.
type testComponent struct {
	initGate, startGate chan struct{}
	initErr, startErr   error
	activateErr         error
	activations         atomic.Int32
	deactivations       atomic.Int32

	mu    sync.Mutex
	calls []string
}

func (c *testComponent) record(name string) {
	c.mu.Lock()
	c.calls = append(c.calls, name)
	c.mu.Unlock()
}

func (c *testComponent) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func waitGate(ctx context.Context, gate chan struct{}) error {
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *testComponent) Init(ctx context.Context) error {
	c.record("Init")
	if err := waitGate(ctx, c.initGate); err != nil {
		return err
	}
	return c.initErr
}

func (c *testComponent) Start(ctx context.Context) error {
	c.record("Start")
	if err := waitGate(ctx, c.startGate); err != nil {
		return err
	}
	return c.startErr
}

func (c *testComponent) Stop(context.Context) error {
	c.record("Stop")
	return nil
}

func (c *testComponent) Deactivate(context.Context) error {
	c.deactivations.Add(1)
	return nil
}

func (c *testComponent) Activate(context.Context) error {
	c.record("Activate")
	c.activations.Add(1)
	return c.activateErr
}

// running is a Runner serving on a loopback listener, with the test
// service registered, and a client connection to it.
type running struct {
	t      testing.TB
	r      *Runner
	svc    *testService
	addr   string
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	errc   chan error
	once   sync.Once
	err    error
}

func startRunner(t testing.TB, cli *clientv3.Client, mgr *clientmanager.Manager, cfg Config, c Component, opts ...Option) *running {
	t.Helper()
	return startRunnerWith(t, cli, mgr, cfg, c, nil, opts...)
}

// startRunnerWith is startRunner with register, when not nil, called to
// add more services to the server before it serves.
func startRunnerWith(t testing.TB, cli *clientv3.Client, mgr *clientmanager.Manager, cfg Config, c Component,
	register func(grpc.ServiceRegistrar), opts ...Option) *running {
	t.Helper()
	opts = append([]Option{WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))}, opts...)
	r, err := New(cli, mgr, cfg, c, opts...)
	require.NoError(t, err)
	srv := grpc.NewServer(r.ServerOptions()...)
	svc := newTestService()
	srv.RegisterService(&testServiceDesc, svc)
	if register != nil {
		register(srv)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	h := &running{t: t, r: r, svc: svc, addr: lis.Addr().String(), conn: conn, cancel: cancel, errc: make(chan error, 1)}
	go func() { h.errc <- r.Run(ctx, srv, lis) }()
	t.Cleanup(func() {
		h.r.ForceStop()
		_ = h.wait()
		_ = h.r.Close()
		_ = conn.Close()
	})
	return h
}

// wait returns Run's result once it returned.
func (h *running) wait() error {
	h.once.Do(func() {
		select {
		case h.err = <-h.errc:
		case <-time.After(2 * testTimeout):
			h.t.Errorf("Run did not return")
		}
	})
	return h.err
}

// stop cancels Run's context and returns Run's result.
func (h *running) stop() error {
	h.cancel()
	return h.wait()
}

func (h *running) waitState(s State) {
	h.t.Helper()
	require.NoError(h.t, h.r.WaitForState(testCtx(h.t), s), "waiting for %s, in %s", s, h.r.State())
}

// health returns the status of service as the health service reports it.
func (h *running) health(service string) healthpb.HealthCheckResponse_ServingStatus {
	h.t.Helper()
	resp, err := healthpb.NewHealthClient(h.conn).Check(testCtx(h.t), &healthpb.HealthCheckRequest{Service: service})
	require.NoError(h.t, err)
	return resp.GetStatus()
}

// collect reads a subscription until it closes.
func collect(ch <-chan Transition) <-chan []Transition {
	out := make(chan []Transition, 1)
	go func() {
		var all []Transition
		for tr := range ch {
			all = append(all, tr)
		}
		out <- all
	}()
	return out
}

func states(trs []Transition) []State {
	out := make([]State, len(trs))
	for i, tr := range trs {
		out[i] = tr.To
	}
	return out
}

// nextEvent returns the next session event within the test timeout.
func nextEvent(t testing.TB, ch <-chan session.Event) session.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "watch subscription closed")
		return ev
	case <-time.After(testTimeout):
		t.Fatal("no session event")
		return session.Event{}
	}
}

// watch subscribes to role's sessions under cfg.
func watch(t testing.TB, cli *clientv3.Client, cfg session.Config, role string) <-chan session.Event {
	t.Helper()
	w, err := session.NewWatcher(cli, cfg, session.DefaultWatchConfig(role))
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return w.Subscribe(ctx)
}
