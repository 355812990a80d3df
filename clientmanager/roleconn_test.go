package clientmanager

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// counted is a unary server interceptor that counts health checks.
type counted struct{ n atomic.Int64 }

func (c *counted) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if info.FullMethod == "/grpc.health.v1.Health/Check" {
		c.n.Add(1)
	}
	return h(ctx, req)
}

func TestRoleConnGeneratedStubFailsOverWhenAReplicaStops(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	counts := []*counted{{}, {}}
	srvs, _ := e.twoReplicas(
		[]grpc.ServerOption{grpc.UnaryInterceptor(counts[0].intercept)},
		[]grpc.ServerOption{grpc.UnaryInterceptor(counts[1].intercept)},
	)
	stub := healthpb.NewHealthClient(e.m.RoleConn(testRole)) // generated code, unchanged
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := stub.Check(ctx, &healthpb.HealthCheckRequest{}, Idempotent())
		if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return errors.Newf("status %s", resp.GetStatus())
		}
		return err
	}
	require.Eventually(t, func() bool {
		require.NoError(t, check())
		return counts[0].n.Load() > 0 && counts[1].n.Load() > 0
	}, testTimeout, time.Millisecond, "both replicas serve")

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		srvs[0].srv.Stop() // node 1 goes down while calls go on
	}()
	for range 200 {
		require.NoError(t, check(), "calls fail over to node 2")
	}
	<-stopped
	e.waitOffline(1)
	before := counts[1].n.Load()
	for range 20 {
		require.NoError(t, check())
	}
	require.Equal(t, before+20, counts[1].n.Load(), "node 2 serves every call")
}

func TestRoleConnFailsFastWithErrServiceUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	require.NoError(t, e.m.AddDependency(testRole))
	for _, role := range []string{testRole, "datanode"} {
		_, err := healthpb.NewHealthClient(e.m.RoleConn(role)).Check(context.Background(), &healthpb.HealthCheckRequest{})
		require.ErrorIs(t, err, ErrServiceUnavailable)
		require.Equal(t, codes.Unavailable, status.Code(err))
		var ne *NodeError
		require.ErrorAs(t, err, &ne)
		require.Equal(t, role, ne.Role)

		_, err = healthpb.NewHealthClient(e.m.RoleConn(role)).Watch(context.Background(), &healthpb.HealthCheckRequest{})
		require.ErrorIs(t, err, ErrServiceUnavailable)
	}
}

func TestRoleConnStreamHoldsOneNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.twoReplicas()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := healthpb.NewHealthClient(e.m.RoleConn(testRole)).Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
	held := func() (n int) {
		for _, s := range e.m.Status() {
			n += s.BulkheadInFlight
		}
		return n
	}
	require.Equal(t, 1, held(), "the stream holds one node's bulkhead slot")
	cancel()
	require.Eventually(t, func() bool { return held() == 0 }, testTimeout, time.Millisecond, "released when it ends")
	_, err = stream.Recv()
	require.Equal(t, codes.Canceled, status.Code(err))
}

func TestWaitForRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	err := e.m.WaitForRole(context.Background(), testRole, 1)
	require.ErrorIs(t, err, ErrUnknownRole, "not a dependency")
	require.Equal(t, codes.FailedPrecondition, status.Code(err))

	require.NoError(t, e.m.AddDependency(testRole))
	require.NoError(t, e.m.WaitForRole(context.Background(), testRole, 0))
	done := make(chan error, 1)
	go func() { done <- e.m.WaitForRole(context.Background(), testRole, 2) }()
	s1 := startServer(t)
	e.node(1, s1.addr)
	e.waitOnline(1)
	select {
	case err := <-done:
		t.Fatalf("returned with one node online: %v", err)
	default:
	}
	s2 := startServer(t)
	e.node(2, s2.addr)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("WaitForRole did not return")
	}
	require.Len(t, e.m.GetClients(testRole), 2)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, e.m.WaitForRole(ctx, testRole, 3), context.DeadlineExceeded)

	go func() { done <- e.m.WaitForRole(context.Background(), testRole, 3) }()
	require.NoError(t, e.m.Close())
	require.ErrorIs(t, <-done, ErrClosed)
	require.ErrorIs(t, e.m.WaitForRole(context.Background(), testRole, 1), ErrClosed)
}
