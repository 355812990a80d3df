package clientmanager

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

// With the health watch, its stream is the identity check of each
// transport: a node whose server accepts its identity is published on the
// first SERVING with no separate probe, and one whose address is served by
// another process is never published — found by the stream alone (the
// server checks identity on streams only here).
func TestHealthWatchIsTheIdentityCheck(t *testing.T) {
	t.Parallel()
	t.Run("same process: online without a probe", func(t *testing.T) {
		t.Parallel()
		var probes atomic.Int64
		var self atomic.Pointer[session.Session]
		self.Store(&session.Session{})
		fn := func() session.Session { return *self.Load() }
		srv := startServer(t, grpc.StreamInterceptor(identity.StreamServerInterceptor(fn)),
			grpc.ChainUnaryInterceptor(countingProbes(&probes), identity.UnaryServerInterceptor(fn)))
		e := newEnv(t, nil)
		s := e.ss.put(session.Session{ServerID: 1, ServerName: testRole, Address: srv.addr, Incarnation: session.NewIncarnation()})
		self.Store(&s)
		require.NoError(t, e.m.AddDependency(testRole))
		e.waitOnline(1)
		require.NoError(t, e.m.Invoke(context.Background(), testRole, callUnary))
		require.Zero(t, probes.Load(), "identity probes besides the health watch")
	})
	t.Run("another process: never published", func(t *testing.T) {
		t.Parallel()
		var probes atomic.Int64
		other := session.Session{ServerID: 2, ServerName: testRole, Incarnation: session.NewIncarnation(), LeaseID: 99}
		fn := func() session.Session { return other }
		srv := startServer(t, grpc.StreamInterceptor(identity.StreamServerInterceptor(fn)), grpc.ChainUnaryInterceptor(countingProbes(&probes)))
		core, logs := observer.New(zapcore.InfoLevel)
		e := newEnv(t, nil, WithLogger(zap.New(core)))
		e.ss.put(session.Session{ServerID: 1, ServerName: testRole, Address: srv.addr, Incarnation: session.NewIncarnation()})
		require.NoError(t, e.m.AddDependency(testRole))
		e.waitState(1, NodeGone)
		for _, le := range logs.AllUntimed() {
			require.NotEqual(t, "online", le.ContextMap()["to"], "published before its identity was checked")
		}
		require.Zero(t, probes.Load(), "identity probes besides the health watch")
		require.ErrorIs(t, e.m.Invoke(context.Background(), testRole, callUnary), ErrServiceUnavailable)
	})
}

// countingProbes counts the connector's unary identity probes; it must
// come before the identity check, which rejects a probe of another
// process.
func countingProbes(n *atomic.Int64) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == identityProbeMethod {
			n.Add(1)
		}
		return h(ctx, req)
	}
}

// With SuspectOnHealth off there is no health watch: the connector probes
// each transport itself, once, before the node is published. A server of
// another process is found; one of the node's process serves after one
// probe.
func TestIdentityProbedWhenHealthWatchOff(t *testing.T) {
	t.Parallel()
	for _, same := range []bool{true, false} {
		var probes atomic.Int64
		var self atomic.Pointer[session.Session]
		self.Store(&session.Session{ServerID: 2, ServerName: testRole, Incarnation: session.NewIncarnation(), LeaseID: 99})
		fn := func() session.Session { return *self.Load() }
		srv := startServer(t, grpc.ChainUnaryInterceptor(countingProbes(&probes), identity.UnaryServerInterceptor(fn)),
			grpc.StreamInterceptor(identity.StreamServerInterceptor(fn)))
		e := newEnv(t, func(c *Config) { c.SuspectOnHealth = false })
		s := e.ss.put(session.Session{ServerID: 1, ServerName: testRole, Address: srv.addr, Incarnation: session.NewIncarnation()})
		if same {
			self.Store(&s)
		}
		require.NoError(t, e.m.AddDependency(testRole))
		if same {
			e.waitOnline(1)
		} else {
			e.waitState(1, NodeGone)
		}
		require.Equal(t, int64(1), probes.Load(), "identity probes (same process: %v)", same)
	}
}

// A server without the health service counts as serving: its node is
// published once connected, its health watch ended (Unimplemented).
func TestNodeWithoutHealthServiceServes(t *testing.T) {
	t.Parallel()
	addr := startServerWithoutHealth(t)
	e := newEnv(t, nil)
	e.node(1, addr)
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitOnline(1)
	require.NoError(t, e.m.Invoke(context.Background(), testRole, callUnary))
}

// startServerWithoutHealth starts a gRPC server with testService alone and
// returns its address.
func startServerWithoutHealth(t *testing.T, opts ...grpc.ServerOption) string {
	t.Helper()
	srv := grpc.NewServer(serverOptions(opts...)...)
	srv.RegisterService(&testServiceDesc, &testService{entered: make(chan struct{}, 16)})
	return serveLoopback(t, srv)
}

// An answer belongs to the stream's generation: once the connection left
// READY (restart), the answer is forgotten at once, and a late answer of
// the old stream — of a transport that is gone — neither counts nor wakes
// the connector; the new stream's answer does. A watch that ended for
// want of a health service keeps serving across restarts and leaves the
// identity check to the connector.
func TestHealthWatchIgnoresLateAnswers(t *testing.T) {
	t.Parallel()
	h := &healthWatch{}
	woken := func() bool {
		ctx, cancel := h.waitContext(context.Background())
		defer cancel()
		return ctx.Err() != nil
	}
	old := h.restarts
	h.set(old, servingYes, nil)
	require.True(t, woken())
	st, _, probe := h.read()
	require.Equal(t, servingYes, st)
	require.False(t, probe, "an answering watch is the identity check")

	h.restart()
	st, _, _ = h.read()
	require.Equal(t, servingUnknown, st, "the answer of the old transport is forgotten at once")
	h.set(old, servingYes, nil) // the old stream, answering late
	require.False(t, woken(), "a late answer woke the connector")
	st, _, _ = h.read()
	require.Equal(t, servingUnknown, st, "a late answer of the old stream counted")

	h.set(h.restarts, servingNo, errNotServing)
	require.True(t, woken())
	st, cause, probe := h.read()
	require.Equal(t, servingNo, st)
	require.ErrorIs(t, cause, errNotServing)
	require.False(t, probe)

	h.end(servingYes) // Unimplemented: no health service
	h.restart()
	st, _, probe = h.read()
	require.Equal(t, servingYes, st, "a server without the health service serves for the connection's life")
	require.True(t, probe, "without the health service the connector checks identity itself")
}
