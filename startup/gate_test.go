package startup

import (
	"context"
	"net"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// gateServer serves the test service and the health service behind a gate
// of m, and returns a client connection to it.
func gateServer(t testing.TB, m *machine, allowlist ...string) (*gate, *grpc.ClientConn, *testService) {
	t.Helper()
	g := newGate(m, allowlist)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(g.unary), grpc.ChainStreamInterceptor(g.stream))
	svc := newTestService()
	srv.RegisterService(&testServiceDesc, svc)
	newHealthService("testrole").register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cc.Close()
		srv.Stop()
		<-served
	})
	return g, cc, svc
}

func TestGateStatesByMethods(t *testing.T) {
	const allowedMethod, allowedService = methodAdmin, "/other.Service/"
	for _, s := range allStates {
		t.Run(s.String(), func(t *testing.T) {
			_, cc, _ := gateServer(t, machineIn(t, s), allowedMethod, allowedService)
			ctx := testCtx(t)
			// Only the health service and the allowlist are served outside
			// Healthy; everything else is refused with the state.
			for _, tc := range []struct {
				name  string
				call  func() error
				gated bool
			}{
				{"health Check", func() error {
					_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
					return err
				}, false},
				{"allowlisted method", func() error { return callUnary(ctx, cc, methodAdmin) }, false},
				{"unary", func() error { return callUnary(ctx, cc, methodEcho) }, true},
				{"stream", func() error { return callStream(ctx, cc) }, true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					err := tc.call()
					if !tc.gated || s == StateHealthy {
						require.NoError(t, err)
						return
					}
					require.Equal(t, codes.Unavailable, status.Code(err))
					got, ok := StateFromError(err)
					require.True(t, ok, "the state is in the error details: %v", err)
					require.Equal(t, s, got)
				})
			}
		})
	}
}

func TestGateAllowed(t *testing.T) {
	g := newGate(machineIn(t, StateInitializing), []string{"/a.B/C", "/x.Y/"})
	for _, tc := range []struct {
		method string
		want   bool
	}{
		{"/grpc.health.v1.Health/Check", true},
		{"/grpc.health.v1.Health/Watch", true},
		{"/a.B/C", true},
		{"/a.B/D", false},
		{"/x.Y/Anything", true},
		{"/x.Yz/Anything", false},
		{"/a.B/CC", false},
	} {
		t.Run(tc.method, func(t *testing.T) { require.Equal(t, tc.want, g.allowed(tc.method)) })
	}
}

func TestGateDrainsInFlight(t *testing.T) {
	m := machineIn(t, StateHealthy)
	g, cc, svc := gateServer(t, m)
	ctx := testCtx(t)
	callErr := make(chan error, 1)
	go func() { callErr <- callUnary(ctx, cc, methodBlock) }()
	<-svc.started
	require.EqualValues(t, 1, g.inflight.Load())

	_, err := m.transition(StateStopping, "test")
	require.NoError(t, err)
	drained := make(chan bool, 1)
	go func() { drained <- g.drain(ctx.Done()) }()

	err = callUnary(ctx, cc, methodEcho)
	got, ok := StateFromError(err)
	require.True(t, ok, "new calls are refused while draining: %v", err)
	require.Equal(t, StateStopping, got)
	select {
	case <-drained:
		t.Fatal("drain returned while a call was in flight")
	default:
	}
	close(svc.release)
	require.NoError(t, <-callErr, "the call in flight completes")
	require.True(t, <-drained)
	require.Zero(t, g.inflight.Load())
}

func TestGateDrainGivesUp(t *testing.T) {
	m := machineIn(t, StateHealthy)
	g, cc, svc := gateServer(t, m)
	ctx := testCtx(t)
	callCtx, cancelCall := context.WithCancel(ctx)
	callErr := make(chan error, 1)
	go func() { callErr <- callUnary(callCtx, cc, methodBlock) }()
	<-svc.started
	_, err := m.transition(StateStopping, "test")
	require.NoError(t, err)
	done := make(chan struct{})
	close(done)
	require.False(t, g.drain(done), "drain reports that calls were still in flight")
	cancelCall()
	require.Equal(t, codes.Canceled, status.Code(<-callErr))
}

func TestStateFromError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want State
		ok   bool
	}{
		{"gated", notServingError(StateAbnormal), StateAbnormal, true},
		{"wrapped", errors.Wrap(notServingError(StateStandBy), "call"), StateStandBy, true},
		{"nil", nil, 0, false},
		{"plain unavailable", status.Error(codes.Unavailable, "not serving in state Healthy"), 0, false},
		{"other code", status.Error(codes.Internal, "x"), 0, false},
		{"not grpc", errors.New("NOT_SERVING"), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := StateFromError(tc.err)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func benchGate(b *testing.B, s State) {
	// The real clock: an admission reads it, and a fake clock's lock would
	// be measured instead of the gate.
	m := newMachine(zap.NewNop(), clockwork.NewRealClock())
	for _, next := range pathTo[s] {
		_, err := m.transition(next, "bench")
		require.NoError(b, err)
	}
	g := newGate(m, nil)
	info := &grpc.UnaryServerInfo{FullMethod: methodEcho}
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = g.unary(ctx, nil, info, handler)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = g.unary(ctx, nil, info, handler)
			}
		})
	})
}

func BenchmarkGateHealthy(b *testing.B)  { benchGate(b, StateHealthy) }
func BenchmarkGateRejected(b *testing.B) { benchGate(b, StateAbnormal) }

func BenchmarkState(b *testing.B) {
	m := machineIn(b, StateHealthy)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = m.current()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = m.current()
			}
		})
	})
}
