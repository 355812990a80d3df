package clientmanager

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

// dialCounter counts the dials of the Dialer it wraps.
type dialCounter struct {
	Dialer
	n atomic.Int64
}

func (d *dialCounter) Dial(ctx context.Context, s session.Session) (Conn, error) {
	d.n.Add(1)
	return d.Dialer.Dial(ctx, s)
}

// identityServer starts a test server whose identity check answers with
// what self holds: the registration of the process it stands for.
func identityServer(t *testing.T, addr string, self *atomic.Pointer[session.Session]) *testServer {
	t.Helper()
	fn := func() session.Session { return *self.Load() }
	return startServerAt(t, addr,
		grpc.UnaryInterceptor(identity.UnaryServerInterceptor(fn)),
		grpc.StreamInterceptor(identity.StreamServerInterceptor(fn)))
}

// A process that lost its lease (an etcd outage longer than the TTL)
// re-registers with the same ServerID and Incarnation under a new lease.
// The manager updates the node's Client in place: no new Client, no
// redial, no call in flight aborted, no Offline for subscribers; calls
// still addressed with the old LeaseID are served, and new calls carry
// the new one.
func TestSameIncarnationNewLeaseUpdatesInPlace(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	dials := &dialCounter{Dialer: NewGRPCDialer(dialOptions(cfg, buildOptions(nil))...)}
	e := newEnv(t, nil, WithDialer(dials))
	var self atomic.Pointer[session.Session]
	self.Store(&session.Session{})
	srv := identityServer(t, "127.0.0.1:0", &self)
	s1 := e.ss.put(session.Session{ServerID: 7, ServerName: testRole, Address: srv.addr, Version: "2.4.0",
		Incarnation: session.NewIncarnation()})
	self.Store(&s1)
	require.NoError(t, e.m.AddDependency(testRole))
	c1 := e.waitOnline(7)

	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	events := make(chan ClientEvent, 16)
	go func() {
		for ev := range e.m.WatchClients(wctx, testRole) {
			events <- ev
		}
		close(events)
	}()
	require.Equal(t, ClientEvent{Type: ClientOnline, Client: c1}, <-events)

	callCtx, cancelCall := context.WithCancel(context.Background())
	defer cancelCall()
	done := make(chan error, 1)
	go func() { done <- callBlock(callCtx, c1) }()
	<-srv.svc.entered

	// The process re-registers: its own identity changes first, the
	// manager learns it from etcd later.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	lease, err := e.cli.Grant(ctx, 60)
	require.NoError(t, err)
	s2 := s1
	s2.LeaseID = int64(lease.ID)
	self.Store(&s2)
	require.NoError(t, callUnary(context.Background(), c1), "a call with the old lease of the same incarnation is served")
	e.ss.put(s2)

	var c *Client
	require.Eventually(t, func() bool {
		c, err = e.m.ClientByID(7)
		return err == nil && c.Session().LeaseID == s2.LeaseID
	}, testTimeout, time.Millisecond, "the manager sees the new lease")
	require.Same(t, c1, c, "the same process keeps its Client")
	select {
	case err := <-done:
		t.Fatalf("the call in flight ended when the node re-registered: %v", err)
	default:
	}
	require.Equal(t, int64(1), c1.calls.inFlight())
	require.NoError(t, callUnary(context.Background(), c1), "new calls carry the new lease")
	require.Equal(t, int64(1), dials.n.Load(), "no redial")
	require.Equal(t, NodeOnline, e.state(7))

	cancelCall()
	err = <-done
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)
	require.NotErrorIs(t, err, ErrNodeGone)

	e.ss.del(s2)
	ev := <-events
	require.Equal(t, ClientEvent{Type: ClientOffline, Client: c1}, ev, "the only Offline is the Del's")
	require.Equal(t, int64(1), dials.n.Load())
}

// A process that died leaves its session until its lease expires; another
// process may meanwhile serve at the address. The old Client's connection
// reconnects to it, and the identity check on that reconnect finds another
// process: the node is gone, never published online again.
func TestStaleIncarnationNotOnlineAfterAddressReuse(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	e := newEnv(t, func(c *Config) { c.ConnectBackoffMax = 200 * time.Millisecond }, WithLogger(zap.New(core)))
	var selfA, selfB atomic.Pointer[session.Session]
	selfA.Store(&session.Session{})
	a := identityServer(t, "127.0.0.1:0", &selfA)
	s1 := e.ss.put(session.Session{ServerID: 1, ServerName: testRole, Address: a.addr, Incarnation: session.NewIncarnation()})
	selfA.Store(&s1)
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitOnline(1)

	a.srv.Stop() // process 1 dies; its session stays until its lease expires
	e.waitOffline(1)
	mark := logs.Len()
	// A new process, with an identity of its own, serves at the address.
	selfB.Store(&session.Session{ServerID: 2, ServerName: testRole, Address: a.addr, Incarnation: session.NewIncarnation(), LeaseID: 99})
	identityServer(t, a.addr, &selfB)

	e.waitState(1, NodeGone)
	for _, le := range logs.AllUntimed()[mark:] {
		require.NotEqual(t, "online", le.ContextMap()["to"], "dead incarnation published online: %v", le.ContextMap())
	}
	require.False(t, e.m.IsOnline(1))
}

// The identity is verified on the first connect too: a node whose address
// is served by another process from the start is never published.
func TestIdentityVerifiedBeforeFirstOnline(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	e := newEnv(t, nil, WithLogger(zap.New(core)))
	var other atomic.Pointer[session.Session]
	other.Store(&session.Session{ServerID: 2, ServerName: testRole, Incarnation: session.NewIncarnation(), LeaseID: 99})
	srv := identityServer(t, "127.0.0.1:0", &other)
	e.ss.put(session.Session{ServerID: 1, ServerName: testRole, Address: srv.addr, Incarnation: session.NewIncarnation()})
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitState(1, NodeGone)
	for _, le := range logs.AllUntimed() {
		require.NotEqual(t, "online", le.ContextMap()["to"], "published before its identity was checked")
	}
	require.ErrorIs(t, e.m.Invoke(context.Background(), testRole, callUnary), ErrServiceUnavailable)
}

// A graceful stop — Stopping, then the session's removal and the server's
// GracefulStop in either order — is a planned departure: the manager logs
// each step at Info, never a warning. A member that is not stopping and
// loses its connection (a crash) still warns.
func TestGracefulStopLogsNoWarning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, e *env, reg *session.Registration, srv *testServer, id int64)
		warn bool
	}{
		{"revoke then GracefulStop", func(t *testing.T, e *env, reg *session.Registration, srv *testServer, id int64) {
			markStopping(t, e, reg, id)
			closeRegistration(t, reg)
			srv.srv.GracefulStop()
		}, false},
		{"GracefulStop then revoke", func(t *testing.T, e *env, reg *session.Registration, srv *testServer, id int64) {
			markStopping(t, e, reg, id)
			srv.srv.GracefulStop()
			closeRegistration(t, reg)
		}, false},
		{"crash", func(t *testing.T, e *env, reg *session.Registration, srv *testServer, id int64) {
			srv.srv.Stop()
			e.waitState(id, NodeSuspect)
			closeRegistration(t, reg) // the lease expiring, sooner
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zapcore.DebugLevel)
			e := newEnv(t, nil, WithLogger(zap.New(core)))
			var self atomic.Pointer[session.Session]
			self.Store(&session.Session{})
			srv := identityServer(t, "127.0.0.1:0", &self)
			reg := register(t, e.cli, session.Session{ServerName: testRole, Address: srv.addr, Version: "2.4.0"})
			s := reg.Session()
			self.Store(&s)
			require.NoError(t, e.m.AddDependency(testRole))
			e.waitOnline(s.ServerID)
			require.NoError(t, e.m.Invoke(context.Background(), testRole, callUnary))

			tc.stop(t, e, reg, srv, s.ServerID)
			require.Eventually(t, func() bool { return len(e.m.Status()) == 0 }, testTimeout, time.Millisecond)
			require.NoError(t, e.m.Close()) // every goroutine of the manager has logged its last

			warned := logs.Filter(func(le observer.LoggedEntry) bool { return le.Level >= zapcore.WarnLevel }).AllUntimed()
			if tc.warn {
				require.NotEmpty(t, warned, "a crashed member is a warning")
				return
			}
			for _, le := range warned {
				t.Errorf("%s %q %v", le.Level, le.Message, le.ContextMap())
			}
		})
	}
}

// markStopping marks reg stopping and waits until the manager stopped
// picking the node: the lame-duck wait.
func markStopping(t *testing.T, e *env, reg *session.Registration, id int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, reg.MarkStopping(ctx))
	e.waitState(id, NodeStopping)
}

func closeRegistration(t *testing.T, reg *session.Registration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, reg.Close(ctx))
}

// register registers s with session.Register and closes the registration
// at the end of the test.
func register(t *testing.T, cli *clientv3.Client, s session.Session) *session.Registration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	reg, err := session.Register(ctx, cli, s, session.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = reg.Close(ctx)
	})
	return reg
}
