package standalone_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/clientmanager/standalone"
	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const standaloneTestTimeout = 10 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), standaloneTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dialStandalone dials sa; the connection is closed by t.Cleanup.
func dialStandalone(t testing.TB, sa *standalone.Server) clientmanager.Conn {
	t.Helper()
	conn, err := sa.Dial(testContext(t), session.Session{ServerID: 1, ServerName: "querynode", Address: "nowhere:0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// newHealthStandalone registers a health server in a new Server (no
// listener anywhere) and dials it.
func newHealthStandalone(t testing.TB, opts ...standalone.Option) (*health.Server, clientmanager.Conn) {
	t.Helper()
	sa := standalone.New(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(sa, hs)
	return hs, dialStandalone(t, sa)
}

func TestHealthCheck(t *testing.T) {
	hs, conn := newHealthStandalone(t)
	require.Equal(t, connectivity.Ready, conn.GetState())
	hc := healthpb.NewHealthClient(conn)
	ctx := testContext(t)

	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	hs.SetServingStatus("querynode", healthpb.HealthCheckResponse_NOT_SERVING)
	resp, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "querynode"})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, resp.GetStatus())

	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
}

func TestHealthWatch(t *testing.T) {
	hs, conn := newHealthStandalone(t)
	hs.SetServingStatus("querynode", healthpb.HealthCheckResponse_SERVING)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()

	w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: "querynode"})
	require.NoError(t, err)
	resp, err := w.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	hs.SetServingStatus("querynode", healthpb.HealthCheckResponse_NOT_SERVING)
	resp, err = w.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, resp.GetStatus())

	cancel()
	_, err = w.Recv()
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)
}

func TestUnimplemented(t *testing.T) {
	_, conn := newHealthStandalone(t)
	ctx := testContext(t)
	in, out := &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}
	cases := []struct {
		name string
		call func() error
	}{
		{"unknown service", func() error { return conn.Invoke(ctx, "/nope.Service/Check", in, out) }},
		{"unknown method", func() error { return conn.Invoke(ctx, "/grpc.health.v1.Health/Nope", in, out) }},
		{"unknown stream", func() error {
			_, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/nope.Service/Watch")
			return err
		}},
		{"stream called as unary", func() error { return conn.Invoke(ctx, "/grpc.health.v1.Health/Watch", in, out) }},
		{"unary called as stream", func() error {
			_, err := conn.NewStream(ctx, &grpc.StreamDesc{}, "/grpc.health.v1.Health/Check")
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
		})
	}
}

func TestInterceptorOrder(t *testing.T) {
	var mu sync.Mutex
	var trail []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		trail = append(trail, s)
	}
	unary := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			note(name + " in " + info.FullMethod)
			defer note(name + " out")
			return h(ctx, req)
		}
	}
	stream := func(name string) grpc.StreamServerInterceptor {
		return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			note(name + " in " + info.FullMethod)
			require.True(t, info.IsServerStream)
			require.False(t, info.IsClientStream)
			return h(srv, ss)
		}
	}
	_, conn := newHealthStandalone(t,
		standalone.WithUnaryInterceptor(unary("a")),
		standalone.WithUnaryInterceptor(unary("b")),
		standalone.WithUnaryInterceptor(unary("c")),
		standalone.WithStreamInterceptor(stream("x")),
		standalone.WithStreamInterceptor(stream("y")))
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()

	_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	const check = "/grpc.health.v1.Health/Check"
	require.Equal(t, []string{"a in " + check, "b in " + check, "c in " + check, "c out", "b out", "a out"}, trail)

	trail = nil
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	_, err = w.Recv()
	require.NoError(t, err)
	const watch = "/grpc.health.v1.Health/Watch"
	mu.Lock()
	require.Equal(t, []string{"x in " + watch, "y in " + watch}, trail)
	mu.Unlock()
}

func TestIdentity(t *testing.T) {
	self := session.Session{ServerID: 5, LeaseID: 50}
	selfFn := func() session.Session { return self }
	_, conn := newHealthStandalone(t,
		standalone.WithUnaryInterceptor(identity.UnaryServerInterceptor(selfFn)),
		standalone.WithStreamInterceptor(identity.StreamServerInterceptor(selfFn)))
	cases := []struct {
		name   string
		target *session.Session
		want   codes.Code
	}{
		{"no identity", nil, codes.OK},
		{"matching", &self, codes.OK},
		{"stale lease", &session.Session{ServerID: 5, LeaseID: 49}, codes.FailedPrecondition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			if tc.target != nil {
				ctx = identity.Outgoing(ctx, *tc.target)
			}
			unaryErr, streamErr := check(ctx, conn)
			for _, err := range []error{unaryErr, streamErr} {
				require.Equal(t, tc.want, status.Code(err), "%v", err)
				require.Equal(t, tc.want == codes.FailedPrecondition, identity.IsMismatch(err))
			}
		})
	}
}

func TestClose(t *testing.T) {
	hs, conn := newHealthStandalone(t)
	hs.SetServingStatus("querynode", healthpb.HealthCheckResponse_SERVING)
	ctx := testContext(t)
	hc := healthpb.NewHealthClient(conn)

	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "querynode"})
	require.NoError(t, err)
	_, err = w.Recv()
	require.NoError(t, err)

	changed := make(chan bool, 1)
	go func() { changed <- conn.WaitForStateChange(ctx, connectivity.Ready) }()
	conn.Connect() // a no-op: still READY
	require.Equal(t, connectivity.Ready, conn.GetState())
	select {
	case <-changed:
		t.Fatal("WaitForStateChange returned while READY")
	default:
	}

	require.NoError(t, conn.Close()) // waits for the Watch handler to return
	require.True(t, <-changed)
	require.Equal(t, connectivity.Shutdown, conn.GetState())
	require.NoError(t, conn.Close(), "second Close")

	_, err = w.Recv()
	require.Equal(t, codes.Canceled, status.Code(err), "open stream: %v", err)
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Canceled, status.Code(err), "unary: %v", err)
	_, err = hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Canceled, status.Code(err), "new stream: %v", err)

	require.True(t, conn.WaitForStateChange(ctx, connectivity.Ready))
	done, cancel := context.WithCancel(ctx)
	cancel()
	require.False(t, conn.WaitForStateChange(done, connectivity.Shutdown))
}

func TestCloseWaitsForStreamHandlers(t *testing.T) {
	started, returned := make(chan struct{}), make(chan struct{})
	sa := standalone.New()
	sa.RegisterService(echoDesc(echoHandlers{chat: func(ss grpc.ServerStream) error {
		defer close(returned)
		close(started)
		<-ss.Context().Done()
		return ss.Context().Err()
	}}), echoImpl{})
	conn := dialStandalone(t, sa)
	cs, err := conn.NewStream(testContext(t), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, echoChat)
	require.NoError(t, err)
	<-started

	require.NoError(t, conn.Close())
	select {
	case <-returned:
	default:
		t.Fatal("Close returned before the stream handler")
	}
	require.Equal(t, codes.Canceled, status.Code(cs.RecvMsg(new(wrapperspb.StringValue))))
}

func TestCloseCancelsUnaryCall(t *testing.T) {
	entered := make(chan struct{})
	sa := standalone.New()
	sa.RegisterService(echoDesc(echoHandlers{unary: func(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	}}), echoImpl{})
	conn := dialStandalone(t, sa)

	errc := make(chan error, 1)
	go func() {
		errc <- conn.Invoke(testContext(t), echoUnary, wrapperspb.String("x"), new(wrapperspb.StringValue))
	}()
	<-entered
	require.NoError(t, conn.Close())
	err := <-errc
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)
}

func TestDeadline(t *testing.T) {
	sa := standalone.New()
	sa.RegisterService(echoDesc(echoHandlers{unary: func(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		<-ctx.Done()
		return in, nil // a handler that ignores why it ended
	}}), echoImpl{})
	conn := dialStandalone(t, sa)
	ctx, cancel := context.WithTimeout(testContext(t), 20*time.Millisecond)
	defer cancel()
	err := conn.Invoke(ctx, echoUnary, wrapperspb.String("x"), new(wrapperspb.StringValue))
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
}

func TestCopiesMessages(t *testing.T) {
	var kept *wrapperspb.StringValue
	sa := standalone.New()
	sa.RegisterService(echoDesc(echoHandlers{unary: func(_ context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		in.Value += "!" // handlers may scribble on their request
		kept = in
		return in, nil
	}}), echoImpl{})
	conn := dialStandalone(t, sa)

	req := wrapperspb.String("hi")
	reply := wrapperspb.String("stale")
	require.NoError(t, conn.Invoke(testContext(t), echoUnary, req, reply))
	require.Equal(t, "hi", req.GetValue(), "caller's request changed")
	require.Equal(t, "hi!", reply.GetValue())
	kept.Value = "later"
	require.Equal(t, "hi!", reply.GetValue(), "reply shares memory with the handler's message")

	err := conn.Invoke(testContext(t), echoUnary, req, new(healthpb.HealthCheckResponse))
	require.Equal(t, codes.Internal, status.Code(err), "wrong reply type: %v", err)
	err = conn.Invoke(testContext(t), echoUnary, "not proto", new(wrapperspb.StringValue))
	require.Equal(t, codes.Internal, status.Code(err), "non-proto request: %v", err)
}

func TestMetadataAndHeaders(t *testing.T) {
	sa := standalone.New()
	sa.RegisterService(echoDesc(echoHandlers{unary: func(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		if md, _ := metadata.FromOutgoingContext(ctx); len(md) > 0 {
			return nil, status.Error(codes.Internal, "caller's metadata would be forwarded")
		}
		if m, _ := grpc.Method(ctx); m != echoUnary {
			return nil, status.Errorf(codes.Internal, "grpc.Method = %q", m)
		}
		if err := grpc.SetHeader(ctx, metadata.Pairs("h", "1")); err != nil {
			return nil, err
		}
		if err := grpc.SetTrailer(ctx, metadata.Pairs("t", "2")); err != nil {
			return nil, err
		}
		return wrapperspb.String(strings.Join(metadata.ValueFromIncomingContext(ctx, "who"), ",")), nil
	}}), echoImpl{})
	conn := dialStandalone(t, sa)

	ctx := metadata.AppendToOutgoingContext(testContext(t), "who", "caller")
	var header, trailer metadata.MD
	reply := new(wrapperspb.StringValue)
	require.NoError(t, conn.Invoke(ctx, echoUnary, wrapperspb.String(""), reply, grpc.Header(&header), grpc.Trailer(&trailer)))
	require.Equal(t, "caller", reply.GetValue())
	require.Equal(t, []string{"1"}, header.Get("h"))
	require.Equal(t, []string{"2"}, trailer.Get("t"))
}

func TestHandlerErrors(t *testing.T) {
	withDetail, err := status.New(codes.ResourceExhausted, "busy").WithDetails(wrapperspb.String("detail"))
	require.NoError(t, err)
	cases := []struct {
		name   string
		err    error
		want   codes.Code
		detail bool
	}{
		{"status", status.Error(codes.NotFound, "no"), codes.NotFound, false},
		{"wrapped status keeps details", errors.Wrap(withDetail.Err(), "handler"), codes.ResourceExhausted, true},
		{"plain error", errors.New("boom"), codes.Unknown, false},
		{"context error", context.DeadlineExceeded, codes.DeadlineExceeded, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sa := standalone.New()
			sa.RegisterService(echoDesc(echoHandlers{unary: func(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
				return nil, tc.err
			}}), echoImpl{})
			conn := dialStandalone(t, sa)
			err := conn.Invoke(testContext(t), echoUnary, wrapperspb.String(""), new(wrapperspb.StringValue))
			st, ok := status.FromError(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tc.want, st.Code())
			require.Equal(t, tc.detail, len(st.Details()) == 1)
			if _, isStatus := tc.err.(interface{ GRPCStatus() *status.Status }); !isStatus {
				require.NotErrorIs(t, err, tc.err, "the handler's error chain reached the caller")
			}
		})
	}
}

func TestBidiStream(t *testing.T) {
	sa := standalone.New()
	sa.RegisterService(echoDesc(echoHandlers{chat: func(ss grpc.ServerStream) error {
		if err := ss.SendHeader(metadata.Pairs("h", "chat")); err != nil {
			return err
		}
		ss.SetTrailer(metadata.Pairs("t", "bye"))
		for {
			in := new(wrapperspb.StringValue)
			if err := ss.RecvMsg(in); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := ss.SendMsg(wrapperspb.String(strings.ToUpper(in.GetValue()))); err != nil {
				return err
			}
		}
	}}), echoImpl{})
	conn := dialStandalone(t, sa)

	cs, err := conn.NewStream(testContext(t), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, echoChat)
	require.NoError(t, err)
	h, err := cs.Header()
	require.NoError(t, err)
	require.Equal(t, []string{"chat"}, h.Get("h"))
	for _, w := range []string{"a", "b", "c"} {
		msg := wrapperspb.String(w)
		require.NoError(t, cs.SendMsg(msg))
		msg.Value = "mutated" // the handler got a copy
		out := new(wrapperspb.StringValue)
		require.NoError(t, cs.RecvMsg(out))
		require.Equal(t, strings.ToUpper(w), out.GetValue())
	}
	require.NoError(t, cs.CloseSend())
	require.Equal(t, io.EOF, cs.RecvMsg(new(wrapperspb.StringValue)))
	require.Equal(t, []string{"bye"}, cs.Trailer().Get("t"))
	err = cs.SendMsg(wrapperspb.String("late"))
	require.Equal(t, codes.Internal, status.Code(err), "send after CloseSend: %v", err)
}

func TestStreamHandlerError(t *testing.T) {
	sa := standalone.New()
	sa.RegisterService(echoDesc(echoHandlers{chat: func(ss grpc.ServerStream) error {
		return status.Error(codes.PermissionDenied, "no")
	}}), echoImpl{})
	conn := dialStandalone(t, sa)
	cs, err := conn.NewStream(testContext(t), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, echoChat)
	require.NoError(t, err)
	// The handler never reads: the send ends when it returns, with io.EOF,
	// and the status comes from RecvMsg.
	require.Equal(t, io.EOF, cs.SendMsg(wrapperspb.String("x")))
	err = cs.RecvMsg(new(wrapperspb.StringValue))
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Equal(t, codes.PermissionDenied, status.Code(cs.RecvMsg(new(wrapperspb.StringValue))), "status is sticky")
}

func TestZeroValue(t *testing.T) {
	var sa standalone.Server
	_, err := sa.Dial(testContext(t), session.Session{})
	require.NoError(t, err, "dial with no services")
	healthpb.RegisterHealthServer(&sa, health.NewServer())
	conn := dialStandalone(t, &sa)
	_, err = healthpb.NewHealthClient(conn).Check(testContext(t), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	err = conn.Invoke(testContext(t), "/nope.Service/M", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	require.Equal(t, codes.Unimplemented, status.Code(err))
}

// A caller whose context ends is not held up by a handler that ignores its
// own context; the handler's goroutine still ends, and Close waits for it.
func TestStreamCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	sa := standalone.New()
	sa.RegisterService(echoDesc(echoHandlers{chat: func(grpc.ServerStream) error {
		<-release
		return nil
	}}), echoImpl{})
	conn := dialStandalone(t, sa)
	t.Cleanup(func() { close(release) }) // runs before the connection's Close

	ctx, cancel := context.WithCancel(testContext(t))
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, echoChat)
	require.NoError(t, err)
	cancel()
	require.Equal(t, codes.Canceled, status.Code(cs.RecvMsg(new(wrapperspb.StringValue))))
	require.Equal(t, codes.Canceled, status.Code(cs.SendMsg(wrapperspb.String("x"))))
	_, err = cs.Header()
	require.Equal(t, codes.Canceled, status.Code(err))
	require.Nil(t, cs.Trailer(), "trailer before the handler returned")
}

func TestRegistrationErrors(t *testing.T) {
	cases := []struct {
		name     string
		register func(sa *standalone.Server)
	}{
		{"nil descriptor", func(sa *standalone.Server) { sa.RegisterService(nil, echoImpl{}) }},
		{"wrong implementation", func(sa *standalone.Server) { sa.RegisterService(echoDesc(echoHandlers{}), struct{}{}) }},
		{"duplicate", func(sa *standalone.Server) {
			sa.RegisterService(echoDesc(echoHandlers{}), echoImpl{})
			sa.RegisterService(echoDesc(echoHandlers{}), echoImpl{})
		}},
		{"method without handler", func(sa *standalone.Server) {
			d := echoDesc(echoHandlers{})
			d.Methods[0].Handler = nil
			sa.RegisterService(d, echoImpl{})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sa := standalone.New()
			tc.register(sa)
			conn, err := sa.Dial(testContext(t), session.Session{})
			require.ErrorIs(t, err, standalone.ErrInvalidService)
			require.Nil(t, conn)
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := standalone.New().Dial(ctx, session.Session{})
	require.ErrorIs(t, err, context.Canceled)
}

func BenchmarkStandaloneUnary(b *testing.B) {
	_, conn := newHealthStandalone(b)
	benchCheck(b, conn)
}

// BenchmarkGRPCLoopbackUnary is the same call over a real loopback gRPC
// connection, for comparison.
func BenchmarkGRPCLoopbackUnary(b *testing.B) {
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	b.Cleanup(func() {
		srv.Stop()
		<-served
	})
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	b.Cleanup(func() { _ = cc.Close() })
	benchCheck(b, cc)
}

// benchCheck measures one health Check on conn, serial and parallel.
func benchCheck(b *testing.B, conn grpc.ClientConnInterface) {
	hc := healthpb.NewHealthClient(conn)
	ctx := testContext(b)
	req := &healthpb.HealthCheckRequest{}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := hc.Check(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := hc.Check(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// check makes one health Check and one Watch (first message) and returns
// both errors.
func check(ctx context.Context, cc grpc.ClientConnInterface) (unaryErr, streamErr error) {
	hc := healthpb.NewHealthClient(cc)
	_, unaryErr = hc.Check(ctx, &healthpb.HealthCheckRequest{})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := hc.Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return unaryErr, err
	}
	_, streamErr = w.Recv()
	return unaryErr, streamErr
}
