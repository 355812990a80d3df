package clientmanager

import (
	"context"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/coordkit/clientmanager/session"
)

// The four kinds of stream, on Empty messages. A call whose metadata has
// streamFailKey fails at once with FailedPrecondition.
var (
	streamUnaryDesc    = grpc.StreamDesc{StreamName: "Unary", Handler: streamHandler(serveUnary)}
	streamUploadDesc   = grpc.StreamDesc{StreamName: "Upload", ClientStreams: true, Handler: streamHandler(serveUpload)}
	streamDownloadDesc = grpc.StreamDesc{StreamName: "Download", ServerStreams: true, Handler: streamHandler(serveDownload)}
	streamBidiDesc     = grpc.StreamDesc{StreamName: "Bidi", ClientStreams: true, ServerStreams: true, Handler: streamHandler(serveBidi)}

	streamServiceDesc = grpc.ServiceDesc{
		ServiceName: "cmtest.Stream",
		HandlerType: (*any)(nil),
		Streams:     []grpc.StreamDesc{streamUnaryDesc, streamUploadDesc, streamDownloadDesc, streamBidiDesc},
	}
)

const (
	streamFailKey = "x-stream-fail"
	// streamDownloads is how many messages Download sends.
	streamDownloads = 3
)

func streamMethod(desc *grpc.StreamDesc) string { return "/cmtest.Stream/" + desc.StreamName }

func streamHandler(serve func(grpc.ServerStream) error) grpc.StreamHandler {
	return func(_ any, ss grpc.ServerStream) error {
		if md, _ := metadata.FromIncomingContext(ss.Context()); len(md.Get(streamFailKey)) > 0 {
			return status.Error(codes.FailedPrecondition, "scripted failure")
		}
		return serve(ss)
	}
}

func serveUnary(ss grpc.ServerStream) error {
	if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
		return err
	}
	return ss.SendMsg(new(emptypb.Empty))
}

func serveUpload(ss grpc.ServerStream) error {
	for {
		switch err := ss.RecvMsg(new(emptypb.Empty)); err {
		case nil:
		case io.EOF:
			return ss.SendMsg(new(emptypb.Empty))
		default:
			return err
		}
	}
}

func serveDownload(ss grpc.ServerStream) error {
	if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
		return err
	}
	for range streamDownloads {
		if err := ss.SendMsg(new(emptypb.Empty)); err != nil {
			return err
		}
	}
	return nil
}

func serveBidi(ss grpc.ServerStream) error {
	for {
		switch err := ss.RecvMsg(new(emptypb.Empty)); err {
		case nil:
			if err := ss.SendMsg(new(emptypb.Empty)); err != nil {
				return err
			}
		case io.EOF:
			return nil
		default:
			return err
		}
	}
}

// startStreamServer starts a real gRPC server on 127.0.0.1:0 with the
// health service and the stream service.
func startStreamServer(t testing.TB) string {
	t.Helper()
	srv := grpc.NewServer(serverOptions()...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	srv.RegisterService(&streamServiceDesc, struct{}{})
	return serveLoopback(t, srv)
}

// headerFaultKey in a call's context makes the client interceptor of
// dialStreams fail the stream's Header.
type headerFaultKey struct{}

// errHeaderFault is what a faulty Header returns.
var errHeaderFault = status.Error(codes.Unavailable, "header lost")

type headerFaultStream struct{ grpc.ClientStream }

func (headerFaultStream) Header() (metadata.MD, error) { return nil, errHeaderFault }

// dialStreams dials addr with a stream interceptor that fails Header for
// calls whose context holds headerFaultKey.
func dialStreams(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	fault := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
		streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err == nil && ctx.Value(headerFaultKey{}) != nil {
			s = headerFaultStream{s}
		}
		return s, err
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStreamInterceptor(fault))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// streamKind is one kind of stream and its use to the end, as generated
// code makes it; mid runs while the stream is open.
type streamKind struct {
	name     string
	desc     *grpc.StreamDesc
	complete func(t *testing.T, st grpc.ClientStream, mid func())
}

var streamKinds = []streamKind{
	{"unary-like", &streamUnaryDesc, func(t *testing.T, st grpc.ClientStream, mid func()) {
		require.NoError(t, st.SendMsg(new(emptypb.Empty)))
		require.NoError(t, st.CloseSend())
		mid()
		require.NoError(t, st.RecvMsg(new(emptypb.Empty)))
	}},
	{"client-streaming", &streamUploadDesc, func(t *testing.T, st grpc.ClientStream, mid func()) {
		for range 3 {
			require.NoError(t, st.SendMsg(new(emptypb.Empty)))
		}
		mid()
		require.NoError(t, st.CloseSend()) // CloseAndRecv
		require.NoError(t, st.RecvMsg(new(emptypb.Empty)))
	}},
	{"server-streaming", &streamDownloadDesc, func(t *testing.T, st grpc.ClientStream, mid func()) {
		require.NoError(t, st.SendMsg(new(emptypb.Empty)))
		require.NoError(t, st.CloseSend())
		_, err := st.Header()
		require.NoError(t, err)
		for range streamDownloads {
			require.NoError(t, st.RecvMsg(new(emptypb.Empty)))
			mid()
		}
		require.Equal(t, io.EOF, st.RecvMsg(new(emptypb.Empty)))
	}},
	{"bidi", &streamBidiDesc, func(t *testing.T, st grpc.ClientStream, mid func()) {
		for range 3 {
			require.NoError(t, st.SendMsg(new(emptypb.Empty)))
			require.NoError(t, st.RecvMsg(new(emptypb.Empty)))
			mid()
		}
		_, err := st.Header()
		require.NoError(t, err)
		require.NoError(t, st.CloseSend())
		require.Equal(t, io.EOF, st.RecvMsg(new(emptypb.Empty)))
	}},
}

// streamEnding is one way a stream ends: end ends st, opened with ctx
// (whose cancel is given), and checks what the caller sees; sync says the
// bookkeeping ends before end returns (not on a context's AfterFunc).
type streamEnding struct {
	name string
	ctx  func(context.Context) context.Context
	sync bool
	end  func(t *testing.T, k streamKind, c *Client, st grpc.ClientStream, cancel context.CancelFunc, mid func())
}

var streamEndings = []streamEnding{
	{"completes", nil, true, func(t *testing.T, k streamKind, _ *Client, st grpc.ClientStream, _ context.CancelFunc, mid func()) {
		k.complete(t, st, mid)
	}},
	{"server fails", func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, streamFailKey, "1")
	}, true, func(t *testing.T, _ streamKind, _ *Client, st grpc.ClientStream, _ context.CancelFunc, _ func()) {
		if err := st.SendMsg(new(emptypb.Empty)); err != nil {
			require.Equal(t, io.EOF, err, "the server ended the stream: RecvMsg tells how")
		}
		require.NoError(t, st.CloseSend())
		require.Equal(t, codes.FailedPrecondition, status.Code(st.RecvMsg(new(emptypb.Empty))))
	}},
	{"send fails", nil, true, func(t *testing.T, _ streamKind, _ *Client, st grpc.ClientStream, _ context.CancelFunc, _ func()) {
		notProto := struct{}{}
		require.Equal(t, codes.Internal, status.Code(st.SendMsg(notProto)))
	}},
	{"header fails", func(ctx context.Context) context.Context {
		return context.WithValue(ctx, headerFaultKey{}, true)
	}, true, func(t *testing.T, _ streamKind, _ *Client, st grpc.ClientStream, _ context.CancelFunc, _ func()) {
		_, err := st.Header()
		require.ErrorIs(t, err, errHeaderFault)
	}},
	{"context cancelled", nil, false, func(t *testing.T, _ streamKind, _ *Client, st grpc.ClientStream, cancel context.CancelFunc, mid func()) {
		mid()
		cancel()
		require.Equal(t, codes.Canceled, status.Code(st.RecvMsg(new(emptypb.Empty))))
	}},
	{"node leaves", nil, false, func(t *testing.T, _ streamKind, c *Client, st grpc.ClientStream, _ context.CancelFunc, mid func()) {
		mid()
		c.kill(ErrNodeGone)
		require.ErrorIs(t, st.RecvMsg(new(emptypb.Empty)), ErrNodeGone)
	}},
}

// Every kind of stream, however it ends, is counted in flight while it is
// open and released exactly once when it ends, with the context that ties
// it to the node's life.
func TestStreamBookkeepingEndsOnceForEveryKind(t *testing.T) {
	cc := dialStreams(t, startStreamServer(t))
	sess := session.Session{ServerID: 1, ServerName: testRole, LeaseID: 1, Incarnation: "a"}
	for _, k := range streamKinds {
		for _, e := range streamEndings {
			t.Run(k.name+"/"+e.name, func(t *testing.T) {
				c := NewClientForTest(sess, cc)
				// A stream that stays open: a release too many would
				// show as a count below it.
				hctx, hcancel := context.WithCancel(context.Background())
				defer hcancel()
				held, err := c.Conn().NewStream(hctx, &streamBidiDesc, streamMethod(&streamBidiDesc))
				require.NoError(t, err)
				require.NoError(t, held.SendMsg(new(emptypb.Empty)))
				require.NoError(t, held.RecvMsg(new(emptypb.Empty)))
				require.Equal(t, int64(1), c.calls.inFlight())

				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if e.ctx != nil {
					ctx = e.ctx(ctx)
				}
				st, err := c.Conn().NewStream(ctx, k.desc, streamMethod(k.desc))
				require.NoError(t, err)
				cs := st.(*clientStream)
				mid := func() {
					t.Helper()
					require.Equal(t, int64(2), c.calls.inFlight(), "an open stream is in flight")
					require.NoError(t, cs.ctx.Err())
				}
				mid()
				e.end(t, k, c, st, cancel, mid)

				want, heldErr := int64(1), codes.Canceled
				if e.name == "node leaves" {
					want, heldErr = 0, codes.Unavailable // the held stream too
				}
				if e.sync {
					require.Equal(t, want, c.calls.inFlight(), "released when the stream ends")
				} else {
					require.Eventually(t, func() bool { return c.calls.inFlight() == want }, testTimeout, time.Millisecond)
				}
				require.Error(t, cs.ctx.Err(), "the stream's context is released")

				// Whatever the caller does next releases nothing more.
				_ = st.RecvMsg(new(emptypb.Empty))
				_ = st.SendMsg(struct{}{})
				_, _ = st.Header()
				cancel()
				hcancel()
				require.Eventually(t, func() bool { return c.calls.inFlight() == 0 }, testTimeout, time.Millisecond)
				require.Equal(t, heldErr, status.Code(held.RecvMsg(new(emptypb.Empty))))
				require.Zero(t, c.calls.inFlight())
			})
		}
	}
}

// 1,000 client-streaming calls through Client.Conn under a long-lived
// context leave nothing in flight, on the Client or its pooled
// connection: the pool reaps the idle connection, a Del closes the
// connection without waiting for the drain timeout, and no goroutine is
// left behind.
func TestStreamClientStreamingCallsLeaveNothingInFlight(t *testing.T) {
	const idle = time.Minute
	clock := clockwork.NewFakeClockAt(time.Now())
	e := newEnv(t, func(c *Config) {
		c.PoolSize = 2
		c.IdleTimeout = idle
		c.DrainTimeout = time.Hour // on the fake clock: only an empty drain ends
	}, WithClock(clock))
	s := e.node(1, startStreamServer(t))
	require.NoError(t, e.m.AddDependency(testRole))
	c := e.waitOnline(1)

	ctx := context.Background() // a long-lived ctx, e.g. a service's own
	upload := func() error {
		st, err := c.Conn().NewStream(ctx, &streamUploadDesc, streamMethod(&streamUploadDesc))
		if err != nil {
			return err
		}
		for range 2 {
			if err := st.SendMsg(new(emptypb.Empty)); err != nil {
				return err
			}
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		return st.RecvMsg(new(emptypb.Empty)) // CloseAndRecv: the call is over
	}
	// The pooled connection is dialed on its first turn.
	require.Eventually(t, func() bool {
		if upload() != nil {
			return false
		}
		pc := c.pool.slots[0].Load()
		return pc != nil && pc.conn.GetState() == connectivity.Ready
	}, testTimeout, time.Millisecond)
	require.Zero(t, c.calls.inFlight())
	// Counted as a condition of require.Eventually sees it, from a
	// goroutine of its own.
	var goroutines int
	require.Eventually(t, func() bool {
		goroutines = runtime.NumGoroutine()
		return true
	}, testTimeout, time.Millisecond)

	const workers, each = 4, 250
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				errs <- upload()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, c.calls.inFlight())
	pc := c.pool.slots[0].Load()
	require.NotNil(t, pc)
	require.Zero(t, pc.inflight.Load(), "the pooled connection carries nothing")
	var st NodeStatus
	for _, st = range e.m.Status() {
		if st.NodeID == 1 {
			break
		}
	}
	require.Zero(t, st.InFlight)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines }, testTimeout, time.Millisecond,
		"goroutines back to %d", goroutines)

	// Idle: the pooled connection is reaped.
	require.Eventually(t, func() bool {
		clock.Advance(idle / 2)
		return c.pool.slots[0].Load() == nil
	}, testTimeout, time.Millisecond)
	require.Equal(t, connectivity.Shutdown, pc.conn.GetState())

	// Del: nothing to drain, the connection closes at once.
	first := c.conn()
	e.ss.del(s)
	e.waitOffline(1)
	require.Eventually(t, func() bool {
		return first.(*grpc.ClientConn).GetState() == connectivity.Shutdown
	}, testTimeout, time.Millisecond)
}
