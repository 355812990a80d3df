package clientmanager

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
)

// TestLookAsideLearnsOnlyNodeFailures: an answer about the request
// (NotFound) and the caller's own deadline say nothing bad about the
// node, so the look-aside balancer must not charge them its ErrorPenalty.
func TestLookAsideLearnsOnlyNodeFailures(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now()) // still: every call takes no time
	m, _ := unitManager(t, clock, 3, func(c *Config) {
		c.Balancer.Policy = balancer.PolicyLookAside
	}, func(ctx context.Context, id int64) error {
		switch id {
		case 1:
			return status.Error(codes.NotFound, "no such segment")
		case 2:
			<-ctx.Done() // until the caller's deadline
			return status.FromContextError(ctx.Err()).Err()
		}
		return status.Error(codes.Internal, "broken")
	})
	for range 5 {
		require.Equal(t, codes.NotFound, status.Code(m.InvokeNode(context.Background(), 1, callUnary)))
		require.Equal(t, codes.Internal, status.Code(m.InvokeNode(context.Background(), 3, callUnary)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, m.InvokeNode(ctx, 2, callUnary), context.DeadlineExceeded)

	la := m.reg.load().roles[testRole].bal.(*balancer.LookAside)
	penalty := m.cfg.Balancer.LookAside.ErrorPenalty
	st, _ := la.Stats(1)
	require.Less(t, st.ResponseTime, penalty, "NotFound is an answer, not a failure")
	st, _ = la.Stats(2)
	require.Less(t, st.ResponseTime, penalty, "the caller's deadline is the caller's")
	st, _ = la.Stats(3)
	require.Equal(t, penalty, st.ResponseTime, "a node's failure is charged")
}

// TestRetryBudgetIsSpentOnlyOnRetriesMade: a retry that does not happen
// (its backoff would end past the caller's deadline) leaves the budget
// alone.
func TestRetryBudgetIsSpentOnlyOnRetriesMade(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	m, _ := unitManager(t, clockwork.NewRealClock(), 1, func(c *Config) {
		noBreaker(c)
		c.RetryBudget = RetryBudget{Ratio: 0, MinPerSecond: 0.1, Window: 10 * time.Second} // one retry per window
		c.CallBackoff.Initial, c.CallBackoff.Jitter = 100*time.Millisecond, 0
	}, func(context.Context, int64) error {
		attempts.Add(1)
		return status.Error(codes.Unavailable, "down")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.Equal(t, codes.Unavailable, status.Code(m.Invoke(ctx, testRole, callUnary, Idempotent())))
	require.Equal(t, int64(1), attempts.Load(), "the backoff does not fit the deadline: no retry")

	attempts.Store(0)
	require.Equal(t, codes.Unavailable, status.Code(m.Invoke(context.Background(), testRole, callUnary, Idempotent(), Attempts(2))))
	require.Equal(t, int64(2), attempts.Load(), "the budget's one retry is still there")
	require.Zero(t, metricValue(t, m.metrics.budgetExhausted.WithLabelValues(testRole)))
}

// TestClientSideResourceExhaustedIsNotTheNodesFailure: an answer larger
// than the caller accepts is refused by the client; the node served it.
func TestClientSideResourceExhaustedIsNotTheNodesFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srvs := e.replicas(1)
	tooLarge := func(ctx context.Context, c *Client) error {
		_, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.MaxCallRecvMsgSize(1))
		return err
	}
	for range 10 {
		require.Equal(t, codes.ResourceExhausted, status.Code(e.m.InvokeNode(context.Background(), 1, tooLarge)))
	}
	c := e.waitOnline(1)
	require.Zero(t, c.brk.Snapshot().Failures, "the client's own limit")
	require.Zero(t, statusOf(t, e.m, 1).ConsecutiveFailures)

	srvs[0].svc.code.Store(uint32(codes.ResourceExhausted)) // the server is overloaded
	require.Equal(t, codes.ResourceExhausted, status.Code(e.m.InvokeNode(context.Background(), 1, callUnary)))
	require.Equal(t, uint64(1), c.brk.Snapshot().Failures, "the server's own ResourceExhausted counts")
}

// TestOwnErrorsAreNotTheNodesFailure: an error the function returns
// before it makes any call is its own: not the node's failure, not
// retried, returned as it is.
func TestOwnErrorsAreNotTheNodesFailure(t *testing.T) {
	t.Parallel()
	errBadRequest := errors.New("bad request")
	var calls atomic.Int64
	m, clients := unitManager(t, clockwork.NewFakeClock(), 2, func(c *Config) {
		c.Balancer.Policy = balancer.PolicyLookAside
	}, ok)
	own := func(context.Context, *Client) error {
		calls.Add(1)
		return errBadRequest
	}
	for range 10 {
		err := m.Invoke(context.Background(), testRole, own, Idempotent())
		require.ErrorIs(t, err, errBadRequest)
		require.Equal(t, codes.Unknown, status.Code(err))
	}
	require.Equal(t, int64(10), calls.Load(), "not retried")
	la := m.reg.load().roles[testRole].bal.(*balancer.LookAside)
	for _, c := range clients {
		require.Zero(t, c.brk.Snapshot().Failures)
		st, _ := la.Stats(c.id)
		require.Less(t, st.ResponseTime, m.cfg.Balancer.LookAside.ErrorPenalty)
	}
}

// TestInvokeReadsTheDeadlineOnTheManagersClock: whether the caller's
// deadline passed is read on the manager's clock, as every other time.
func TestInvokeReadsTheDeadlineOnTheManagersClock(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now().Add(time.Hour))
	var calls atomic.Int64
	m, _ := unitManager(t, clock, 1, nil, func(context.Context, int64) error {
		calls.Add(1)
		return nil
	})
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(30*time.Minute))
	defer cancel()
	err := m.Invoke(ctx, testRole, callUnary)
	require.ErrorIs(t, err, context.DeadlineExceeded, "past the deadline on the manager's clock")
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	require.Zero(t, calls.Load())
}
