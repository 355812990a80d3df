package clientmanager

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

func TestNewStartsNothingAndRejectsNilClient(t *testing.T) {
	_, err := New(nil, DefaultConfig())
	require.ErrorContains(t, err, "cli")

	member := etcdtest.Start(t)
	newSessions(t, member.Client).put(session.Session{ServerID: 1, Address: "127.0.0.1:1"}) // connects the etcd client
	before := goleak.IgnoreCurrent()
	m, err := New(member.Client, DefaultConfig())
	require.NoError(t, err)
	require.NoError(t, goleak.Find(before), "New starts no goroutine")
	require.Empty(t, m.Status())
	require.NoError(t, m.Close())
}

func TestAddDependencyIdempotentAndAfterClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srv := startServer(t)
	e.node(1, srv.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	require.NoError(t, e.m.AddDependency(testRole), "idempotent")
	e.waitOnline(1)
	require.Len(t, e.m.roles, 1, "one watcher for the role")
	require.Len(t, e.m.Status(), 1, "one connector for the node")

	require.NoError(t, e.m.Close())
	require.NoError(t, e.m.Close(), "Close is idempotent")
	require.ErrorIs(t, e.m.AddDependency("datanode"), ErrClosed)
	require.False(t, e.m.IsOnline(1))
	_, err := e.m.GetClient(testRole)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, e.m.Invoke(context.Background(), testRole, callUnary), ErrClosed)
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	member := etcdtest.Start(t)
	ss := newSessions(t, member.Client)
	srv := startServer(t)
	hole := blackHole(t)
	// The sessions' puts also open the etcd client's connection.
	ss.put(session.Session{ServerID: 1, ServerName: testRole, Address: srv.addr})
	ss.put(session.Session{ServerID: 2, ServerName: testRole, Address: hole})
	before := goleak.IgnoreCurrent()

	// The manager's own etcd client, closed before the check: the etcd
	// client ends its watch streams asynchronously.
	cli := etcdtest.NewClient(t, member.Endpoint())
	m, err := New(cli, testConfig())
	require.NoError(t, err)
	require.NoError(t, m.AddDependency(testRole))
	require.Eventually(t, func() bool { return m.IsOnline(1) }, testTimeout, time.Millisecond)
	watch := m.WatchClients(context.Background(), testRole)
	inflight := make(chan error, 1)
	go func() { inflight <- m.Invoke(context.Background(), testRole, callBlock) }()
	<-srv.svc.entered

	require.NoError(t, m.Close())
	require.ErrorIs(t, <-inflight, ErrNodeGone, "Close cancels calls in flight")
	for range watch {
	}
	require.NoError(t, cli.Close())
	require.NoError(t, goleak.Find(append([]goleak.Option{before}, etcdtest.LeakOptions()...)...))
}

func TestRegisteredNodeOnlineAndFirstCallSucceeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srv := startServer(t)
	require.NoError(t, e.m.AddDependency(testRole))
	require.False(t, e.m.IsRoleOnline(testRole))

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	reg, err := session.Register(ctx, e.cli, session.Session{ServerName: testRole, Address: srv.addr}, session.DefaultConfig())
	require.NoError(t, err)
	id := reg.Session().ServerID

	c := e.waitOnline(id)
	require.True(t, e.m.IsRoleOnline(testRole))
	require.Equal(t, reg.Session().LeaseID, c.Session().LeaseID)
	require.NoError(t, healthCheck(ctx, c), "first call succeeds")
	require.NoError(t, e.m.Invoke(ctx, testRole, healthCheck))
	require.Equal(t, []*Client{c}, e.m.GetClients(testRole))

	require.NoError(t, reg.Close(ctx), "graceful stop: Stopping, then revoke")
	e.waitOffline(id)
	require.False(t, e.m.IsRoleOnline(testRole))
	require.Eventually(t, func() bool { return len(e.m.Status()) == 0 }, testTimeout, time.Millisecond)
	err = e.m.Invoke(ctx, testRole, healthCheck)
	require.ErrorIs(t, err, ErrServiceUnavailable)
}

func TestDelCancelsInFlightCallAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	srv := startServer(t)
	s := e.node(1, srv.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	c := e.waitOnline(1)

	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Invoke", func(ctx context.Context) error { return e.m.Invoke(ctx, testRole, callBlock) }},
		{"Conn", func(ctx context.Context) error { return callBlock(ctx, c) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "Conn" {
				s = e.node(1, srv.addr)
				c = e.waitOnline(1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tc.call(ctx) }()
			<-srv.svc.entered
			start := time.Now()
			e.ss.del(s)
			var err error
			select {
			case err = <-done:
			case <-time.After(testTimeout):
				t.Fatal("the call in flight did not return")
			}
			require.Less(t, time.Since(start), 5*time.Second, "returns on the Del, not at CallTimeout (10 s)")
			require.ErrorIs(t, err, ErrNodeGone)
			require.Equal(t, codes.Unavailable, status.Code(err))
			var ne *NodeError
			require.ErrorAs(t, err, &ne)
			require.Equal(t, int64(1), ne.NodeID)
			require.False(t, e.m.IsOnline(1))
			require.ErrorIs(t, callUnary(ctx, c), ErrNodeGone, "the removed client refuses new calls")
		})
	}
}

func TestBlackHolesDoNotDelayOthers(t *testing.T) {
	e := newEnv(t, nil) // DialTimeout: the default 30 s
	require.Equal(t, 30*time.Second, e.m.cfg.DialTimeout)
	srv := startServer(t)
	var ids []int64
	for i := int64(1); i <= 50; i++ {
		if i%10 == 0 {
			e.node(i, blackHole(t))
			continue
		}
		lis := srv.listen(t)
		e.node(i, lis)
		ids = append(ids, i)
	}
	require.Len(t, ids, 45)
	start := time.Now()
	require.NoError(t, e.m.AddDependency(testRole))
	require.Eventually(t, func() bool { return len(e.m.GetClients(testRole)) == 45 }, testTimeout, time.Millisecond)
	// Every reachable node is online while the black holes are still in
	// their first 30 s attempt: none waited for a black hole. How soon
	// they are online is measured by make scale, not asserted here.
	t.Logf("45 nodes online %s after AddDependency", time.Since(start))
	for _, id := range ids {
		require.True(t, e.m.IsOnline(id))
	}
	for i := int64(10); i <= 50; i += 10 {
		require.Equal(t, NodeConnecting, e.state(i), "black hole %d still dialing", i)
	}
}

func TestNewIncarnationReplacesOld(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		incarnation string // of the old record
		next        func(e *env, old session.Session, other string) session.Session
	}{
		{"new lease without incarnation", "", func(e *env, old session.Session, _ string) session.Session {
			old.LeaseID = 0 // a record written by Milvus: the lease is the process
			return e.ss.put(old)
		}},
		{"new address", "", func(e *env, old session.Session, other string) session.Session {
			old.Address = other
			return e.ss.put(old)
		}},
		{"restarted process", session.NewIncarnation(), func(e *env, old session.Session, _ string) session.Session {
			old.LeaseID, old.Incarnation = 0, session.NewIncarnation() // same ServerID and address
			return e.ss.put(old)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			a, b := startServer(t), startServer(t)
			old := e.ss.put(session.Session{ServerID: 7, ServerName: testRole, Address: a.addr, Version: "2.4.0",
				Incarnation: tc.incarnation})
			require.NoError(t, e.m.AddDependency(testRole))
			c1 := e.waitOnline(7)
			watch := e.m.WatchClients(context.Background(), testRole)
			require.Equal(t, ClientEvent{Type: ClientOnline, Client: c1}, <-watch)

			done := make(chan error, 1)
			go func() { done <- callBlock(context.Background(), c1) }()
			<-a.svc.entered
			next := tc.next(e, old, b.addr)

			require.ErrorIs(t, <-done, ErrNodeGone, "calls to the old incarnation are cancelled")
			var c2 *Client
			require.Eventually(t, func() bool {
				c, err := e.m.ClientByID(7)
				c2 = c
				return err == nil && c != c1
			}, testTimeout, time.Millisecond)
			require.Equal(t, next.LeaseID, c2.Session().LeaseID)
			require.Equal(t, next.Address, c2.Session().Address)
			require.NoError(t, callUnary(context.Background(), c2))
			require.Len(t, e.m.Status(), 1, "one member per ServerID")
			ev := <-watch
			if ev.Type == ClientOffline {
				require.Same(t, c1, ev.Client)
				ev = <-watch
			}
			require.Equal(t, ClientEvent{Type: ClientOnline, Client: c2}, ev)
		})
	}
}

func TestStoppingNodeIsNotPicked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a, b := startServer(t), startServer(t)
	sa := e.node(1, a.addr)
	e.node(2, b.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitOnline(1)
	e.waitOnline(2)

	sa.Stopping = true
	e.ss.put(sa)
	e.waitState(1, NodeStopping)
	require.False(t, e.m.IsOnline(1))
	require.True(t, e.m.IsRoleOnline(testRole))
	clients := e.m.GetClients(testRole)
	require.Len(t, clients, 1)
	require.Equal(t, int64(2), clients[0].NodeID())
	_, err := e.m.ClientByID(1)
	require.ErrorIs(t, err, ErrServiceUnavailable)
	for i := 0; i < 20; i++ {
		c, err := e.m.GetClient(testRole)
		require.NoError(t, err)
		require.Equal(t, int64(2), c.NodeID())
		require.NoError(t, e.m.Invoke(context.Background(), testRole, callUnary))
	}
	require.Zero(t, a.svc.calls.Load(), "the stopping node got no call")
	require.Equal(t, int64(20), b.svc.calls.Load())

	sa.Stopping = false
	e.ss.put(sa)
	e.waitOnline(1)
}

func TestVersionRangeFiltersNodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.VersionRange = map[string]string{testRole: ">= 2.4"} })
	srv := startServer(t)
	e.ss.put(session.Session{ServerID: 1, ServerName: testRole, Address: srv.addr, Version: "2.3.0"})
	e.ss.put(session.Session{ServerID: 2, ServerName: testRole, Address: srv.addr, Version: "2.4.1"})
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitOnline(2)
	require.False(t, e.m.IsOnline(1))
	require.Len(t, e.m.Status(), 1)
}

// listen adds a listener to the server and returns its address, so one
// server can stand for many nodes.
func (s *testServer) listen(t testing.TB) string {
	t.Helper()
	lis, err := netListen()
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(lis)
	}()
	t.Cleanup(func() {
		s.srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

func TestErrorsConvertToUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		is   error
		code codes.Code
	}{
		{"service unavailable", unavailableForRole("x"), ErrServiceUnavailable, codes.Unavailable},
		{"node gone", nodeErr(3, ErrNodeGone), ErrNodeGone, codes.Unavailable},
		{"closed", ErrClosed, ErrClosed, codes.Unavailable},
		{"node error passes the status through", nodeErr(3, status.Error(codes.Internal, "x")), nil, codes.Internal},
		{"node error of a context error", nodeErr(3, context.Canceled), context.Canceled, codes.Canceled},
		{"caller error", &callerError{ctxErr: context.DeadlineExceeded}, context.DeadlineExceeded, codes.DeadlineExceeded},
		{"wrapped twice", errors.Wrap(fmt.Errorf("outer: %w", unavailableForRole("x")), "again"), ErrServiceUnavailable, codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.is != nil {
				require.ErrorIs(t, tc.err, tc.is)
			}
			require.Equal(t, tc.code, status.Code(tc.err))
		})
	}
}
