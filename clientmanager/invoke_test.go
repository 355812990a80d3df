package clientmanager

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

// replicas starts n servers registered as nodes 1..n and waits until they
// are online.
func (e *env) replicas(n int) []*testServer {
	e.t.Helper()
	srvs := make([]*testServer, n)
	for i := range srvs {
		srvs[i] = startServer(e.t)
		e.node(int64(i+1), srvs[i].addr)
	}
	require.NoError(e.t, e.m.AddDependency(testRole))
	for i := range srvs {
		e.waitOnline(int64(i + 1))
	}
	return srvs
}

// recorder wraps a call and records the nodes it was made with.
type recorder struct {
	mu    sync.Mutex
	nodes []int64
}

func (r *recorder) wrap(fn callFunc) callFunc {
	return func(ctx context.Context, c *Client) error {
		r.mu.Lock()
		r.nodes = append(r.nodes, c.NodeID())
		r.mu.Unlock()
		return fn(ctx, c)
	}
}

func (r *recorder) take() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.nodes
	r.nodes = nil
	return out
}

func totalCalls(srvs []*testServer) int64 {
	var n int64
	for _, s := range srvs {
		n += s.svc.calls.Load()
	}
	return n
}

func TestInvokeFastFailsWithoutNodes(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.m.AddDependency(testRole))
	for _, role := range []string{testRole, "not-a-dependency"} {
		t.Run(role, func(t *testing.T) {
			called := false
			fn := func(context.Context, *Client) error { called = true; return nil }
			// How fast it fails is measured by BenchmarkInvokeFastFail; here,
			// that it fails without calling and without waiting.
			var err error
			for range 200 {
				err = e.m.Invoke(context.Background(), role, fn)
			}
			require.False(t, called)
			require.ErrorIs(t, err, ErrServiceUnavailable)
			require.Equal(t, codes.Unavailable, status.Code(err))
			require.Contains(t, err.Error(), role)
		})
	}
	require.Equal(t, 200.0, metricValue(t, e.m.metrics.fastFails.WithLabelValues(testRole)))
}

func TestInvokeFailsOverToAnotherReplica(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srvs := e.replicas(3)
	srvs[0].svc.code.Store(uint32(codes.Unavailable))
	srvs[1].svc.code.Store(uint32(codes.Unavailable))
	var rec recorder
	const calls = 30
	for i := 0; i < calls; i++ {
		require.NoError(t, e.m.Invoke(context.Background(), testRole, rec.wrap(callUnary), Idempotent()))
		tried := rec.take()
		require.Equal(t, int64(3), tried[len(tried)-1], "ends on the healthy replica")
		require.Len(t, slices.Compact(slices.Sorted(slices.Values(tried))), len(tried), "each attempt on a different replica: %v", tried)
	}
	require.Equal(t, int64(calls), srvs[2].svc.calls.Load())
	require.Positive(t, srvs[0].svc.calls.Load()+srvs[1].svc.calls.Load(), "the failing replicas were tried")
	require.Equal(t, float64(calls), metricValue(t, e.m.metrics.calls.WithLabelValues(testRole, "OK")))
	require.Equal(t, float64(totalCalls(srvs)), metricValue(t, e.m.metrics.attempts.WithLabelValues(testRole)))
}

func TestInvokeRetryableCodesUseEveryReplica(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srvs := e.replicas(3)
	for _, code := range []codes.Code{codes.Unavailable, codes.Aborted} {
		t.Run(code.String(), func(t *testing.T) {
			for _, s := range srvs {
				s.svc.code.Store(uint32(code))
				s.svc.calls.Store(0)
			}
			var rec recorder
			err := e.m.Invoke(context.Background(), testRole, rec.wrap(callUnary), Idempotent())
			require.Equal(t, code, status.Code(err))
			require.ElementsMatch(t, []int64{1, 2, 3}, rec.take(), "three attempts, three replicas")
			for _, s := range srvs {
				require.Equal(t, int64(1), s.svc.calls.Load())
			}
		})
	}
}

func TestInvokeNonRetryableCodesReturnAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srvs := e.replicas(2)
	for _, code := range []codes.Code{codes.InvalidArgument, codes.ResourceExhausted, codes.PermissionDenied,
		codes.Internal, codes.NotFound, codes.FailedPrecondition} {
		t.Run(code.String(), func(t *testing.T) {
			for _, s := range srvs {
				s.svc.code.Store(uint32(code))
				s.svc.calls.Store(0)
			}
			err := e.m.Invoke(context.Background(), testRole, callUnary)
			require.Equal(t, code, status.Code(err))
			require.Equal(t, int64(1), totalCalls(srvs), "not retried")
		})
	}
}

func TestInvokeRespectsCallerDeadline(t *testing.T) {
	e := newEnv(t, nil) // CallTimeout: the default 10 s
	srvs := e.replicas(2)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.m.Invoke(ctx, testRole, callBlock)
	took := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	require.GreaterOrEqual(t, took, 150*time.Millisecond)
	require.Less(t, took, 5*time.Second, "ended by the caller's deadline, not by CallTimeout (10 s)")
	require.Equal(t, int64(1), totalCalls(srvs), "not retried past the caller's deadline")
}

func TestInvokeCallerCancelIsNotRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srvs := e.replicas(2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.m.Invoke(ctx, testRole, callBlock) }()
	select {
	case <-srvs[0].svc.entered:
	case <-srvs[1].svc.entered:
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(testTimeout):
		t.Fatal("Invoke did not return")
	}
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, codes.Canceled, status.Code(err))
	require.Equal(t, int64(1), totalCalls(srvs))
	require.Equal(t, 1.0, metricValue(t, e.m.metrics.calls.WithLabelValues(testRole, "Canceled")))
}

func TestInvokeRetriesItsOwnAttemptTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.CallTimeout = 100 * time.Millisecond })
	srvs := e.replicas(3)
	var rec recorder
	start := time.Now()
	err := e.m.Invoke(context.Background(), testRole, rec.wrap(callBlock), Idempotent())
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	require.ElementsMatch(t, []int64{1, 2, 3}, rec.take())
	require.Equal(t, int64(3), totalCalls(srvs))
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
}

// fakeNodes sets up a manager whose nodes are fakeConns answering with
// answer(node, ctx).
func fakeNodes(t *testing.T, clock clockwork.Clock, n int, edit func(*Config), answer func(id int64, ctx context.Context) error) *env {
	t.Helper()
	dialer := dialerFunc(func(_ context.Context, s session.Session) (Conn, error) {
		c := newFakeConn()
		c.invoke = func(ctx context.Context, _ string) error { return answer(s.ServerID, ctx) }
		return c, nil
	})
	e := newEnv(t, edit, WithClock(clock), WithDialer(dialer))
	for i := int64(1); i <= int64(n); i++ {
		e.node(i, "192.0.2.1:9")
	}
	require.NoError(t, e.m.AddDependency(testRole))
	for i := int64(1); i <= int64(n); i++ {
		e.waitOnline(i)
	}
	return e
}

func TestInvokeFailoverIsImmediate(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now()) // never advanced: a backoff would hang
	e := fakeNodes(t, clock, 2, nil, func(id int64, _ context.Context) error {
		if id == 1 {
			return status.Error(codes.Unavailable, "down")
		}
		return nil
	})
	var rec recorder
	for i := 0; i < 20; i++ {
		require.NoError(t, e.m.Invoke(context.Background(), testRole, rec.wrap(callUnary), Idempotent()))
		tried := rec.take()
		require.Contains(t, [][]int64{{2}, {1, 2}}, tried)
	}
}

func TestInvokeRetriesSameNodeAfterBackoff(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now())
	type attempt struct {
		at  time.Time
		ctx context.Context
	}
	attempts := make(chan attempt, 8)
	const callTimeout = 10 * time.Second
	e := fakeNodes(t, clock, 1, func(c *Config) { c.CallBackoff.Jitter = 0 }, func(_ int64, ctx context.Context) error {
		attempts <- attempt{at: clock.Now(), ctx: ctx}
		<-ctx.Done()
		return status.FromContextError(context.Cause(ctx)).Err()
	})
	require.Equal(t, callTimeout, e.m.cfg.CallTimeout)
	done := make(chan error, 1)
	go func() { done <- e.m.Invoke(context.Background(), testRole, callUnary, Idempotent()) }()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var prev time.Time
	backoffs := []time.Duration{0, 100 * time.Millisecond, 160 * time.Millisecond}
	for i, backoff := range backoffs {
		var a attempt
		select {
		case a = <-attempts:
		case <-ctx.Done():
			t.Fatalf("attempt %d did not come", i+1)
		}
		if i > 0 {
			require.Equal(t, callTimeout+backoff, a.at.Sub(prev), "attempt %d waits CallBackoff", i+1)
		}
		prev = a.at
		clock.Advance(callTimeout)
		<-a.ctx.Done()
		if i < 2 {
			require.NoError(t, clock.BlockUntilContext(ctx, 1+managerTimers))
			clock.Advance(backoffs[i+1])
		}
	}
	err := <-done
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	require.True(t, errors.Is(err, errAttemptTimeout), "marked as the attempt's own timeout: %+v", err)
}

func TestInvokeNodeTargetsOneNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.CallBackoff.Initial, c.CallBackoff.Max = time.Millisecond, time.Millisecond
	})
	srvs := e.replicas(2)
	for i := 0; i < 10; i++ {
		require.NoError(t, e.m.InvokeNode(context.Background(), 2, callUnary))
	}
	require.Equal(t, int64(10), srvs[1].svc.calls.Load())
	require.Zero(t, srvs[0].svc.calls.Load())

	srvs[1].svc.code.Store(uint32(codes.Unavailable))
	var rec recorder
	err := e.m.InvokeNode(context.Background(), 2, rec.wrap(callUnary), Idempotent())
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Equal(t, []int64{2, 2, 2}, rec.take(), "retried on that node only")
	require.Zero(t, srvs[0].svc.calls.Load())

	err = e.m.InvokeNode(context.Background(), 99, callUnary)
	require.ErrorIs(t, err, ErrServiceUnavailable)
	var ne *NodeError
	require.ErrorAs(t, err, &ne)
	require.Equal(t, int64(99), ne.NodeID)
}

func TestIdentityMismatchMeansNodeGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var self atomic.Pointer[session.Session]
	self.Store(&session.Session{})
	impostor := startServer(t, grpc.UnaryInterceptor(identity.UnaryServerInterceptor(func() session.Session { return *self.Load() })))
	honest := startServer(t)
	s1 := e.node(1, impostor.addr)
	self.Store(&s1) // node 1's process, while the manager connects
	e.node(2, honest.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	c1 := e.waitOnline(1)
	e.waitOnline(2)
	self.Store(&session.Session{ServerID: 1, LeaseID: 12345}) // then another process answers there

	err := callUnary(context.Background(), c1)
	require.ErrorIs(t, err, ErrNodeGone, "a rejected identity is a gone node")
	require.Equal(t, codes.Unavailable, status.Code(err))
	e.waitState(1, NodeGone)
	require.False(t, e.m.IsOnline(1))
	var rec recorder
	for i := 0; i < 10; i++ {
		require.NoError(t, e.m.Invoke(context.Background(), testRole, rec.wrap(callUnary)))
	}
	require.NotContains(t, rec.take(), int64(1))

	// The process at the address registers: a new incarnation is online.
	// It knows its lease before the record is put, as a real process does,
	// so the manager's first check cannot reach it with the old identity.
	next := s1
	next.LeaseID = e.ss.grant()
	self.Store(&next)
	e.ss.put(next)
	c := e.waitOnline(1)
	require.NotSame(t, c1, c)
	require.NoError(t, callUnary(context.Background(), c))
}

func TestInvokeFailsOverFromRejectedIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var self atomic.Pointer[session.Session]
	self.Store(&session.Session{})
	impostor := startServer(t, grpc.UnaryInterceptor(identity.UnaryServerInterceptor(func() session.Session {
		return *self.Load()
	})))
	honest := startServer(t)
	s1 := e.node(1, impostor.addr)
	self.Store(&s1) // node 1's process, while the manager connects
	e.node(2, honest.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitOnline(1)
	e.waitOnline(2)
	self.Store(&session.Session{ServerID: 1, LeaseID: 1}) // then another process answers there
	var rec recorder
	for i := 0; i < 100 && e.m.IsOnline(1); i++ {
		require.NoError(t, e.m.Invoke(context.Background(), testRole, rec.wrap(callUnary)))
	}
	require.False(t, e.m.IsOnline(1), "the impostor was tried and dropped")
	tried := rec.take()
	require.Contains(t, tried, int64(1))
	require.Equal(t, int64(2), tried[len(tried)-1])
}
