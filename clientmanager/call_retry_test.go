package clientmanager

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/coordkit/clientmanager/session"
)

// notServingStatus is what the startup package's gate answers while its
// process does not serve.
func notServingStatus(t testing.TB) error {
	st, err := status.New(codes.Unavailable, "startup: not serving in state StandBy").WithDetails(&errdetails.ErrorInfo{
		Domain: gateErrorDomain, Reason: gateNotServing, Metadata: map[string]string{"state": "StandBy"},
	})
	require.NoError(t, err)
	return st.Err()
}

// gated is a unary server interceptor that refuses every call but the
// health service's, as a process that does not serve does, while closed
// is set.
type gated struct {
	closed  atomic.Bool
	refused atomic.Int64
	err     error
}

func (g *gated) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if g.closed.Load() && info.FullMethod != "/grpc.health.v1.Health/Check" {
		g.refused.Add(1)
		return nil, g.err
	}
	return h(ctx, req)
}

// twoReplicas starts two servers registered as nodes 1 and 2 and returns
// them with their sessions, once both are online.
func (e *env) twoReplicas(opts ...[]grpc.ServerOption) ([]*testServer, []session.Session) {
	e.t.Helper()
	srvs := make([]*testServer, 2)
	sess := make([]session.Session, 2)
	for i := range srvs {
		var o []grpc.ServerOption
		if i < len(opts) {
			o = opts[i]
		}
		srvs[i] = startServer(e.t, o...)
		sess[i] = e.node(int64(i+1), srvs[i].addr)
	}
	require.NoError(e.t, e.m.AddDependency(testRole))
	e.waitOnline(1)
	e.waitOnline(2)
	return srvs, sess
}

func TestInvokeDoesNotRetryAnAnsweredCallUnlessIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noBreaker)
	srvs, _ := e.twoReplicas()
	for _, s := range srvs {
		s.svc.code.Store(uint32(codes.Unavailable))
	}
	err := e.m.Invoke(context.Background(), testRole, callUnary)
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.ErrorIs(t, err, ErrServiceUnavailable)
	require.Equal(t, int64(1), totalCalls(srvs), "the node answered: the request reached it")

	err = e.m.Invoke(context.Background(), testRole, callUnary, Idempotent(), Attempts(2))
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Equal(t, int64(3), totalCalls(srvs), "an idempotent call goes to the other replica")
}

func TestInvokeDoesNotRetryItsOwnTimeoutUnlessIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.CallTimeout = 100 * time.Millisecond })
	srvs, _ := e.twoReplicas()
	var rec recorder
	err := e.m.Invoke(context.Background(), testRole, rec.wrap(callBlock))
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	require.True(t, errors.Is(err, errAttemptTimeout), "%+v", err)
	require.Len(t, rec.take(), 1, "the request may have been processed: not sent again")
	require.Equal(t, int64(1), totalCalls(srvs))
}

func TestInvokeDoesNotRetryWhenItsNodeLeftMidCallUnlessIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srvs, sess := e.twoReplicas()
	for _, idempotent := range []bool{false, true} {
		var opts []CallOption
		if idempotent {
			opts = append(opts, Idempotent())
		}
		for _, s := range srvs {
			s.svc.calls.Store(0)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.m.Invoke(ctx, testRole, callBlock, opts...) }()
		first := enteredServer(t, srvs)
		e.ss.del(sess[first]) // the node leaves while the call runs
		if idempotent {
			require.Equal(t, 1-first, enteredServer(t, srvs), "retried on the other node")
			cancel()
			require.ErrorIs(t, <-done, context.Canceled)
			require.Equal(t, int64(2), totalCalls(srvs))
		} else {
			err := <-done
			cancel()
			require.ErrorIs(t, err, ErrNodeGone)
			require.ErrorIs(t, err, ErrServiceUnavailable)
			var ne *NodeError
			require.ErrorAs(t, err, &ne)
			require.Equal(t, testRole, ne.Role)
			require.Equal(t, int64(first+1), ne.NodeID)
			require.Equal(t, int64(1), totalCalls(srvs), "the request reached the node: not sent again")
		}
		sess[first].LeaseID = 0
		sess[first] = e.ss.put(sess[first]) // a new process of it comes back
		e.waitOnline(int64(first + 1))
	}
}

// enteredServer waits until a Block call enters one of srvs and returns
// its index.
func enteredServer(t *testing.T, srvs []*testServer) int {
	t.Helper()
	select {
	case <-srvs[0].svc.entered:
		return 0
	case <-srvs[1].svc.entered:
		return 1
	case <-time.After(testTimeout):
		t.Fatal("no call entered a server")
	}
	return -1
}

func TestInvokeRetriesACallTheGateRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noBreaker)
	g := &gated{err: notServingStatus(t)}
	g.closed.Store(true)
	srvs, _ := e.twoReplicas([]grpc.ServerOption{grpc.UnaryInterceptor(g.intercept)})
	for range 20 {
		require.NoError(t, e.m.Invoke(context.Background(), testRole, callUnary), "not idempotent, yet retried")
	}
	require.Positive(t, g.refused.Load(), "node 1's gate was asked")
	require.Zero(t, srvs[0].svc.calls.Load(), "node 1's handler never ran")
	require.Equal(t, int64(20), srvs[1].svc.calls.Load())
	require.Zero(t, statusOf(t, e.m, 1).ConsecutiveFailures, "a process that does not serve yet is not failing")
}

func TestInvokeRetriesWhenTheNodeLeftBeforeTheCall(t *testing.T) {
	t.Parallel()
	var hits nodeSet
	m, clients := unitManager(t, clockwork.NewFakeClock(), 2, func(c *Config) {
		c.Balancer.Policy = "round_robin"
	}, func(_ context.Context, id int64) error {
		hits.add(id)
		return nil
	})
	clients[0].kill(ErrNodeGone) // gone, and not yet out of the snapshot
	for range 10 {
		require.NoError(t, m.Invoke(context.Background(), testRole, callUnary))
	}
	require.Equal(t, []int64{2}, hits.ids(), "nothing was sent to node 1")
	require.Zero(t, clients[0].brk.Snapshot().Failures)
}

func TestRoleConnRetriesACallThatFoundNoConnection(t *testing.T) {
	t.Parallel()
	var hits nodeSet
	m, clients := unitManager(t, clockwork.NewRealClock(), 2, func(c *Config) {
		c.Balancer.Policy = "round_robin"
	}, func(_ context.Context, id int64) error {
		hits.add(id)
		return nil
	})
	// Node 1 is online, but its connection cannot reach anything: its
	// calls fail in the client, before a request is sent.
	refused, err := grpc.NewClient("passthrough:///"+closedAddr(t), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDisableRetry())
	require.NoError(t, err)
	t.Cleanup(func() { _ = refused.Close() })
	clients[0].setConn(refused)
	conn := m.RoleConn(testRole)
	for range 10 {
		require.NoError(t, conn.Invoke(context.Background(), "/cmtest.Test/Unary", new(emptypb.Empty), new(emptypb.Empty)))
	}
	require.Equal(t, 10, hits.count(2))
}

// closedAddr returns an address on which nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	lis, err := netListen()
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

func TestCallOptions(t *testing.T) {
	o := buildCallOptions([]CallOption{Idempotent(), Attempts(5), AttemptTimeout(time.Second)})
	require.Equal(t, callOptions{idempotent: true, attempts: 5, attemptTimeout: time.Second}, o)
	require.Equal(t, 1, buildCallOptions([]CallOption{Attempts(0)}).attempts)
	require.Zero(t, buildCallOptions([]CallOption{AttemptTimeout(-1)}).attemptTimeout)
	require.Equal(t, callOptions{}, buildCallOptions(nil))
	g := grpcCallOptions([]grpc.CallOption{grpc.WaitForReady(true), Idempotent(), Attempts(2)})
	require.Equal(t, callOptions{idempotent: true, attempts: 2}, g)
}

func TestInvokeAttemptsOption(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	m, _ := unitManager(t, clockwork.NewFakeClock(), 3, noBreaker, func(context.Context, int64) error {
		calls.Add(1)
		return status.Error(codes.Unavailable, "down")
	})
	_ = m.Invoke(context.Background(), testRole, callUnary, Idempotent(), Attempts(2))
	require.Equal(t, int64(2), calls.Load())
	calls.Store(0)
	_ = m.Invoke(context.Background(), testRole, callUnary, Idempotent(), Attempts(1))
	require.Equal(t, int64(1), calls.Load())
}

func TestAttemptBounds(t *testing.T) {
	clock := clockwork.NewFakeClock()
	m, _ := unitManager(t, clock, 1, nil, ok) // CallTimeout 10 s, 3 attempts
	in := func(d time.Duration) context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(d))
		t.Cleanup(cancel)
		return ctx
	}
	idem := callOptions{idempotent: true}
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		o       callOptions
		attempt int
		want    bounds
	}{
		{"no deadline", context.Background(), idem, 1, bounds{timeout: 10 * time.Second}},
		{"long deadline", in(time.Minute), idem, 1, bounds{timeout: 10 * time.Second}},
		{"2 s, first of 3", in(2100 * time.Millisecond), idem, 1, bounds{timeout: 700 * time.Millisecond}},
		{"2 s, last of 3", in(2 * time.Second), idem, 3, bounds{timeout: 2 * time.Second}},
		{"floor", in(150 * time.Millisecond), idem, 1, bounds{timeout: minAttemptTimeout}},
		{"not idempotent: all the time, charged at the share", in(2100 * time.Millisecond), callOptions{}, 1,
			bounds{timeout: 10 * time.Second, charge: 700 * time.Millisecond}},
		{"not idempotent, last", in(2 * time.Second), callOptions{}, 3, bounds{timeout: 10 * time.Second}},
		{"option", in(2 * time.Second), callOptions{attemptTimeout: 5 * time.Second}, 1, bounds{timeout: 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, m.attemptBounds(tc.ctx, tc.o, tc.attempt, 3))
		})
	}
}
