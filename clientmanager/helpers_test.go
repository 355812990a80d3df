package clientmanager

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
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
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

const (
	testTimeout = etcdtest.DefaultTestTimeout
	testRole    = "querynode"
	childEnv    = "CM_TEST_CHILD"
)

// testService is a tiny gRPC service: Unary answers with the server's
// configured code, Block waits until the call is cancelled.
type testService struct {
	calls   atomic.Int64
	code    atomic.Uint32 // codes.Code Unary returns; OK by default
	entered chan struct{} // a Block call began
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

func (s *testService) unary(context.Context) error {
	s.calls.Add(1)
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
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &testServer{
		addr:   lis.Addr().String(),
		srv:    grpc.NewServer(serverOptions(opts...)...),
		health: health.NewServer(),
		svc:    &testService{entered: make(chan struct{}, 16)},
	}
	healthpb.RegisterHealthServer(s.srv, s.health)
	s.srv.RegisterService(&testServiceDesc, s.svc)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(lis)
	}()
	t.Cleanup(func() {
		s.srv.Stop()
		<-done
	})
	return s
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

// fakeConn is a Conn whose state the test sets; Invoke answers with
// invoke's result.
type fakeConn struct {
	mu      sync.Mutex
	state   connectivity.State
	changed chan struct{}
	invoke  func(ctx context.Context, method string) error
	closed  atomic.Bool
}

func newFakeConn() *fakeConn {
	return &fakeConn{state: connectivity.Ready, changed: make(chan struct{})}
}

func (f *fakeConn) setState(st connectivity.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = st
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConn) GetState() connectivity.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeConn) WaitForStateChange(ctx context.Context, src connectivity.State) bool {
	for {
		f.mu.Lock()
		st, ch := f.state, f.changed
		f.mu.Unlock()
		if st != src {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (f *fakeConn) Connect() {}

func (f *fakeConn) Close() error {
	f.closed.Store(true)
	return nil
}

func (f *fakeConn) Invoke(ctx context.Context, method string, _, _ any, _ ...grpc.CallOption) error {
	if f.invoke != nil {
		return f.invoke(ctx, method)
	}
	return nil
}

func (f *fakeConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "fakeConn has no streams")
}

// dialerFunc adapts a function to Dialer.
type dialerFunc func(ctx context.Context, s session.Session) (Conn, error)

func (f dialerFunc) Dial(ctx context.Context, s session.Session) (Conn, error) { return f(ctx, s) }

// runChildServer is the body of the child process of crash tests: it
// serves health and testService on 127.0.0.1:0, prints its address and
// serves until killed.
func runChildServer() int {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := grpc.NewServer(serverOptions()...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	srv.RegisterService(&testServiceDesc, &testService{entered: make(chan struct{}, 1)})
	fmt.Println(lis.Addr().String())
	if err := srv.Serve(lis); err != nil {
		return 1
	}
	return 0
}

// child is a server in another process.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// startChild runs this test binary as a child server and returns its address.
func startChild(t testing.TB) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ch := &child{cmd: cmd, done: make(chan struct{})}
	line := make(chan string, 1)
	go func() {
		defer close(ch.done)
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- strings.TrimSpace(sc.Text())
		}
		for sc.Scan() {
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-ch.done
	})
	select {
	case ch.addr = <-line:
	case <-time.After(testTimeout):
		t.Fatal("child server did not print its address")
	}
	return ch
}

func (c *child) kill(t testing.TB) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Kill())
	select {
	case <-c.done:
	case <-time.After(testTimeout):
		t.Fatal("child did not exit")
	}
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
