package clientmanager

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

func TestStatusReportsEveryNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.DialAttempts = 1
		// Long enough for a loopback dial on a loaded machine, short
		// enough for the black hole to become unreachable soon.
		c.DialTimeout = 2 * time.Second
	})
	srv := startServer(t)
	s2 := e.node(2, srv.addr)
	e.node(1, blackHole(t))
	e.ss.put(session.Session{ServerID: 9, ServerName: "datanode", Address: srv.addr})
	require.NoError(t, e.m.AddDependency(testRole))
	require.NoError(t, e.m.AddDependency("datanode"))
	c2 := e.waitOnline(2)
	e.waitOnline(9)
	e.waitState(1, NodeUnreachable)

	done := make(chan error, 1)
	go func() { done <- callBlock(context.Background(), c2) }()
	<-srv.svc.entered
	st := e.m.Status()
	require.Len(t, st, 3)
	require.Equal(t, []string{"datanode", testRole, testRole}, []string{st[0].Role, st[1].Role, st[2].Role})
	require.Equal(t, []int64{9, 1, 2}, []int64{st[0].NodeID, st[1].NodeID, st[2].NodeID})

	unreachable, online := st[1], st[2]
	require.Equal(t, NodeUnreachable, unreachable.State)
	require.Contains(t, unreachable.LastError, "deadline exceeded")
	require.Equal(t, NodeOnline, online.State)
	require.Empty(t, online.LastError)
	require.Equal(t, srv.addr, online.Address)
	require.Equal(t, s2.LeaseID, online.LeaseID)
	require.Equal(t, int64(1), online.InFlight)
	require.False(t, online.Since.IsZero())
	require.False(t, online.Since.After(time.Now()))

	e.ss.del(s2)
	require.ErrorIs(t, <-done, ErrNodeGone)
	require.Eventually(t, func() bool { return e.state(2) == noState }, testTimeout, time.Millisecond, "a deleted node leaves Status")
}

func TestNodeStateStrings(t *testing.T) {
	for s, want := range map[NodeState]string{NodeConnecting: "connecting", NodeOnline: "online", NodeSuspect: "suspect",
		NodeUnreachable: "unreachable", NodeStopping: "stopping", NodeGone: "gone", NodeState(42): "NodeState(42)"} {
		require.Equal(t, want, s.String())
	}
	require.Equal(t, "online", ClientOnline.String())
	require.Equal(t, "offline", ClientOffline.String())
	require.Equal(t, "ClientEventType(9)", ClientEventType(9).String())
}

func TestMetricsRegisteredOnce(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := newEnv(t, nil, WithRegisterer(reg))
	_, err := newManager(e.cli, DefaultConfig(), WithRegisterer(reg))
	require.ErrorContains(t, err, "register metrics", "a second manager on the same registerer")

	e.replicas(1)
	require.NoError(t, e.m.Invoke(context.Background(), testRole, callUnary))
	require.ErrorIs(t, e.m.Invoke(context.Background(), "datanode", callUnary), ErrServiceUnavailable)
	families, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, n := range []string{"clientmanager_dials_total", "clientmanager_nodes", "clientmanager_calls_total",
		"clientmanager_call_attempts_total", "clientmanager_fast_fails_total"} {
		require.True(t, names[n], n)
	}
	// Counters without a sample yet are not gathered: touch them.
	e.m.metrics.unhealthyFails.WithLabelValues(testRole)
	e.m.metrics.breakerTransitions.WithLabelValues(testRole, "open")
	e.m.metrics.bulkheadRejections.WithLabelValues(testRole)
	e.m.metrics.budgetExhausted.WithLabelValues(testRole)
	e.m.metrics.pushbackWaits.WithLabelValues(testRole)
	e.m.metrics.pushbackStops.WithLabelValues(testRole)
	families, err = reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, n := range []string{"clientmanager_unhealthy_fails_total", "clientmanager_breaker_transitions_total",
		"clientmanager_bulkhead_rejections_total", "clientmanager_retry_budget_exhausted_total",
		"clientmanager_pushback_waits_total", "clientmanager_pushback_stops_total"} {
		require.True(t, names[n], n)
	}
	require.Equal(t, 1.0, metricValue(t, e.m.metrics.dials.WithLabelValues(testRole, "ok")))
	require.Equal(t, 1.0, metricValue(t, e.m.metrics.nodes.WithLabelValues(testRole, "online")))
	require.Equal(t, 1.0, metricValue(t, e.m.metrics.calls.WithLabelValues(testRole, "OK")))
	require.Equal(t, 1.0, metricValue(t, e.m.metrics.calls.WithLabelValues("datanode", "Unavailable")))
	require.Equal(t, 1.0, metricValue(t, e.m.metrics.fastFails.WithLabelValues("datanode")))
}

func TestNewClientForTest(t *testing.T) {
	conn := newFakeConn()
	var got []string
	conn.invoke = func(_ context.Context, method string) error {
		got = append(got, method)
		return status.Error(codes.NotFound, "no")
	}
	c := NewClientForTest(session.Session{ServerID: 4, ServerName: "rootcoord", LeaseID: 8}, conn)
	require.Equal(t, int64(4), c.NodeID())
	require.Equal(t, "rootcoord", c.Role())
	require.Equal(t, int64(8), c.Session().LeaseID)
	err := c.Conn().Invoke(context.Background(), "/x.Y/Z", nil, nil)
	require.Equal(t, codes.NotFound, status.Code(err))
	require.Equal(t, []string{"/x.Y/Z"}, got)
}

func TestConnCarriesIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var self atomic.Pointer[session.Session]
	srv := startServer(t, grpc.UnaryInterceptor(identity.UnaryServerInterceptor(func() session.Session {
		return *self.Load()
	})))
	s := e.node(1, srv.addr)
	self.Store(&s)
	require.NoError(t, e.m.AddDependency(testRole))
	c := e.waitOnline(1)
	require.NoError(t, callUnary(context.Background(), c), "the right identity passes")
	other := s
	other.LeaseID++
	self.Store(&other)
	require.ErrorIs(t, callUnary(context.Background(), c), ErrNodeGone, "the server checked the identity the call carried")
}

func TestStreamThroughConnIsCancelledWhenNodeGoes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srv := startServer(t)
	s := e.node(1, srv.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	c := e.waitOnline(1)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	stream, err := healthpb.NewHealthClient(c.Conn()).Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.Status)
	require.Equal(t, int64(1), c.calls.inFlight(), "an open stream is in flight")

	e.ss.del(s)
	_, err = stream.Recv()
	require.ErrorIs(t, err, ErrNodeGone)
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Zero(t, c.calls.inFlight(), "the ended stream is no longer in flight")
}

func TestStreamEndsCleanly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.replicas(1)
	c := e.waitOnline(1)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := healthpb.NewHealthClient(c.Conn()).Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err)
	cancel()
	_, err = stream.Recv()
	require.Equal(t, codes.Canceled, status.Code(err), "the caller's cancellation is not a gone node")
	require.NotErrorIs(t, err, ErrNodeGone)
	require.Eventually(t, func() bool { return c.calls.inFlight() == 0 }, testTimeout, time.Millisecond)
}
