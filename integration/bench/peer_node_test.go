package bench

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"
)

// echoMethod is the call of the load: the health service's Check,
// registered a second time under the service name bench.Echo, so that the
// load is told apart from the health checks and watches a client makes of
// its own.
const (
	echoService = "bench.Echo"
	echoMethod  = "/" + echoService + "/Check"
)

// node is one gRPC server on 127.0.0.1: the standard health service
// (SERVING) and bench.Echo, with the arrival times of the Echo calls.
type node struct {
	addr string
	srv  *grpc.Server
	base time.Time

	hits  atomic.Int64 // Echo calls received
	first atomic.Int64 // ns after base of the first Echo call since armFirst; 0: none
	last  atomic.Int64 // ns after base of the latest Echo call
}

func startNode(t testing.TB, base time.Time) *node {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{addr: lis.Addr().String(), base: base}
	n.srv = grpc.NewServer(grpc.UnaryInterceptor(n.record))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(n.srv, hs)
	echo := healthpb.Health_ServiceDesc
	echo.ServiceName = echoService
	n.srv.RegisterService(&echo, hs)
	go func() { _ = n.srv.Serve(lis) }()
	t.Cleanup(n.srv.Stop)
	return n
}

func (n *node) record(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	// The generated handler names the health service's method in info;
	// the stream tells the method called.
	if m, _ := grpc.Method(ctx); m == echoMethod {
		now := int64(time.Since(n.base))
		n.hits.Add(1)
		n.first.CompareAndSwap(0, now)
		n.last.Store(now)
	}
	return h(ctx, req)
}

func (n *node) armFirst() { n.first.Store(0) }

// attempts records when the load last tried the watched address. An
// attempt is a call of the load that opens a stream on a transport to it,
// seen by a stats.Handler on every system's connections (last); for ours,
// also an Invoke attempt given that node, whether or not it reaches a
// transport (picked).
type attempts struct {
	base    time.Time
	watched atomic.Pointer[string]
	last    atomic.Int64 // ns after base; 0: none
	picked  atomic.Int64 // ns after base; 0: none
}

func (a *attempts) watch(addr string) {
	a.last.Store(0)
	a.picked.Store(0)
	a.watched.Store(&addr)
}

func (a *attempts) note(addr string) { a.noteAt(&a.last, addr) }

func (a *attempts) notePick(addr string) { a.noteAt(&a.picked, addr) }

func (a *attempts) noteAt(at *atomic.Int64, addr string) {
	if w := a.watched.Load(); w != nil && *w == addr {
		at.Store(int64(time.Since(a.base)))
	}
}

// attemptStats is the stats.Handler of every system's connections: every
// attempt that opens a stream of the load on a transport reports the
// transport's remote address.
type attemptStats struct{ a *attempts }

func (s attemptStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (s attemptStats) HandleRPC(_ context.Context, st stats.RPCStats) {
	if h, ok := st.(*stats.OutHeader); ok && h.Client && h.RemoteAddr != nil && h.FullMethod == echoMethod {
		s.a.note(h.RemoteAddr.String())
	}
}
func (s attemptStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (s attemptStats) HandleConn(context.Context, stats.ConnStats)                       {}
