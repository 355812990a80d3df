package clientmanager

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

const (
	testTimeout = etcdtest.DefaultTestTimeout
	testRole    = "querynode"
	// managerTimers is the number of timers a manager with a dependency
	// keeps on its clock at rest: the breaker refresh ticker and the
	// dependency's session watcher's progress ticker.
	managerTimers = 2
)

// testService is a tiny gRPC service: Unary answers with the server's
// configured code (and retry pushback trailer, if set), Block waits until
// the call is cancelled.
type testService struct {
	calls    atomic.Int64
	code     atomic.Uint32 // codes.Code Unary returns; OK by default
	pushback atomic.Pointer[string]
	entered  chan struct{} // a Block call began
	mu       sync.Mutex
	at       []time.Time // when each Unary call arrived
}

var testServiceDesc = grpc.ServiceDesc{
	ServiceName: "cmtest.Test",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Unary", Handler: unaryHandler("Unary", (*testService).unary)},
		{MethodName: "Block", Handler: unaryHandler("Block", (*testService).block)},
	},
}

// unaryHandler is what protoc-gen-go-grpc generates for a unary method
// taking and returning Empty.
func unaryHandler(name string, fn func(*testService, context.Context) error) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(emptypb.Empty)
		if err := dec(in); err != nil {
			return nil, err
		}
		handler := func(ctx context.Context, _ any) (any, error) {
			if err := fn(srv.(*testService), ctx); err != nil {
				return nil, err
			}
			return new(emptypb.Empty), nil
		}
		if interceptor == nil {
			return handler(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/cmtest.Test/" + name}, handler)
	}
}

func (s *testService) unary(ctx context.Context) error {
	s.calls.Add(1)
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	if p := s.pushback.Load(); p != nil {
		if err := grpc.SetTrailer(ctx, metadata.Pairs(PushbackTrailer, *p)); err != nil {
			return err
		}
	}
	if c := codes.Code(s.code.Load()); c != codes.OK {
		return status.Error(c, "scripted failure")
	}
	return nil
}

func (s *testService) block(ctx context.Context) error {
	s.calls.Add(1)
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return status.FromContextError(ctx.Err()).Err()
}

// testServer is a real gRPC server on 127.0.0.1:0 with the health service
// and testService.
type testServer struct {
	addr   string
	srv    *grpc.Server
	health *health.Server
	svc    *testService
}

func serverOptions(extra ...grpc.ServerOption) []grpc.ServerOption {
	return append([]grpc.ServerOption{grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
		MinTime: 5 * time.Second, PermitWithoutStream: true,
	})}, extra...)
}

func startServer(t testing.TB, opts ...grpc.ServerOption) *testServer {
	t.Helper()
	return startServerAt(t, "127.0.0.1:0", opts...)
}

// startServerAt is startServer listening on addr, which may be the address
// of a server that just stopped: listening is retried until it is free.
func startServerAt(t testing.TB, addr string, opts ...grpc.ServerOption) *testServer {
	t.Helper()
	var lis net.Listener
	require.Eventually(t, func() bool {
		var err error
		lis, err = net.Listen("tcp", addr)
		return err == nil
	}, testTimeout, 10*time.Millisecond, "listen on %s", addr)
	s := &testServer{
		addr:   lis.Addr().String(),
		srv:    grpc.NewServer(serverOptions(opts...)...),
		health: health.NewServer(),
		svc:    &testService{entered: make(chan struct{}, 16)},
	}
	healthpb.RegisterHealthServer(s.srv, s.health)
	s.srv.RegisterService(&testServiceDesc, s.svc)
	serve(t, s.srv, lis)
	return s
}

// serve serves srv on lis until the test ends, then stops it and waits
// for Serve to return.
func serve(t testing.TB, srv *grpc.Server, lis net.Listener) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
}

// serveLoopback serves srv on a new port of 127.0.0.1 until the test
// ends, and returns its address.
func serveLoopback(t testing.TB, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(t, srv, lis)
	return lis.Addr().String()
}

func callUnary(ctx context.Context, c *Client) error {
	return c.Conn().Invoke(ctx, "/cmtest.Test/Unary", new(emptypb.Empty), new(emptypb.Empty))
}

func callBlock(ctx context.Context, c *Client) error {
	return c.Conn().Invoke(ctx, "/cmtest.Test/Block", new(emptypb.Empty), new(emptypb.Empty))
}

func healthCheck(ctx context.Context, c *Client) error {
	_, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// sessions writes session records straight into etcd, under leases of its
// own, so tests control LeaseID, Stopping and deletion exactly.
type sessions struct {
	t   testing.TB
	cli *clientv3.Client
	cfg session.Config
}

func newSessions(t testing.TB, cli *clientv3.Client) *sessions {
	return &sessions{t: t, cli: cli, cfg: session.DefaultConfig()}
}

// put writes s; a zero LeaseID grants a new lease (a new incarnation).
func (k *sessions) put(s session.Session) session.Session {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if s.ServerName == "" {
		s.ServerName = testRole
	}
	if s.LeaseID == 0 {
		lease, err := k.cli.Grant(ctx, 60)
		require.NoError(k.t, err)
		s.LeaseID = int64(lease.ID)
	}
	b, err := s.Encode()
	require.NoError(k.t, err)
	_, err = k.cli.Put(ctx, k.cfg.Key(s.ServerName, s.ServerID), string(b), clientv3.WithLease(clientv3.LeaseID(s.LeaseID)))
	require.NoError(k.t, err)
	return s
}

// grant returns a new lease of 60 s for a record put later.
func (k *sessions) grant() int64 {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	lease, err := k.cli.Grant(ctx, 60)
	require.NoError(k.t, err)
	return int64(lease.ID)
}

func (k *sessions) del(s session.Session) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := k.cli.Delete(ctx, k.cfg.Key(s.ServerName, s.ServerID))
	require.NoError(k.t, err)
}

// env is one test's etcd, sessions and manager.
type env struct {
	t   *testing.T
	cli *clientv3.Client
	ss  *sessions
	m   *Manager
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.DrainTimeout = time.Second
	return cfg
}

func newEnv(t *testing.T, edit func(*Config), opts ...Option) *env {
	t.Helper()
	member := etcdtest.Start(t)
	e := &env{t: t, cli: member.Client, ss: newSessions(t, member.Client)}
	cfg := testConfig()
	if edit != nil {
		edit(&cfg)
	}
	m, err := New(e.cli, cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	e.m = m
	return e
}

// node registers a node of testRole serving at srv's address.
func (e *env) node(id int64, addr string) session.Session {
	return e.ss.put(session.Session{ServerID: id, ServerName: testRole, Address: addr, Version: "2.4.0"})
}

func (e *env) waitOnline(id int64) *Client {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.m.IsOnline(id) }, testTimeout, time.Millisecond, "node %d online", id)
	c, err := e.m.ClientByID(id)
	require.NoError(e.t, err)
	return c
}

func (e *env) waitOffline(id int64) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return !e.m.IsOnline(id) }, testTimeout, time.Millisecond, "node %d offline", id)
}

func (e *env) state(id int64) NodeState {
	for _, s := range e.m.Status() {
		if s.NodeID == id {
			return s.State
		}
	}
	return noState
}

func (e *env) waitState(id int64, want NodeState) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.state(id) == want }, testTimeout, time.Millisecond,
		"node %d %s", id, want)
}

// blackHole accepts TCP connections and never speaks HTTP/2.
func blackHole(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return lis.Addr().String()
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

const (
	connectivityReady            = connectivity.Ready
	connectivityTransientFailure = connectivity.TransientFailure
	connectivityShutdown         = connectivity.Shutdown
)

// metricValue reads a counter or gauge.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	require.NoError(t, m.Write(&pb))
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", &pb)
	return 0
}
