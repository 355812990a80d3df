package clientmanager

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/clientmanager/breaker"
)

// freezer makes a server hang: once frozen, every call of the test
// service that arrives blocks, ignoring its context, until the test ends.
// Its health service still answers and its connections stay up.
type freezer struct {
	frozen  atomic.Bool
	stuck   atomic.Int64 // calls that arrived frozen
	release chan struct{}
}

func newFreezer(t *testing.T) *freezer {
	f := &freezer{release: make(chan struct{})}
	t.Cleanup(func() { close(f.release) }) // runs before the server stops
	return f
}

func (f *freezer) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if f.frozen.Load() && info.FullMethod == "/cmtest.Test/Unary" {
		f.stuck.Add(1)
		<-f.release
	}
	return h(ctx, req)
}

// TestInvokeHungNodeLeavesRoutingFast runs three real replicas and callers
// with 2 s deadlines, far below the default 10 s CallTimeout, then freezes
// one replica. The attempts on it run out of their share of the callers'
// time, which is the node's failure: its breaker opens and it leaves
// routing well within a second, and an idempotent call fails over.
func TestInvokeHungNodeLeavesRoutingFast(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []CallOption
	}{
		{"idempotent", []CallOption{Idempotent()}},
		{"not idempotent", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hungNodeScenario(t, tc.opts)
		})
	}
}

func hungNodeScenario(t *testing.T, opts []CallOption) {
	const (
		workers  = 16
		deadline = 2 * time.Second
	)
	e := newEnv(t, nil) // the default CallTimeout (10 s) and breaker
	require.Equal(t, 10*time.Second, e.m.cfg.CallTimeout)
	fz := newFreezer(t)
	srvs := []*testServer{startServer(t, grpc.UnaryInterceptor(fz.intercept)), startServer(t), startServer(t)}
	for i, s := range srvs {
		e.node(int64(i+1), s.addr)
	}
	require.NoError(t, e.m.AddDependency(testRole))
	for i := range srvs {
		e.waitOnline(int64(i + 1))
	}

	var (
		mu       sync.Mutex
		calls    int
		failed   []error
		stopLoad = make(chan struct{})
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				err := e.m.Invoke(ctx, testRole, callUnary, opts...)
				cancel()
				mu.Lock()
				calls++
				if err != nil {
					failed = append(failed, err)
				}
				mu.Unlock()
			}
		}()
	}
	defer func() {
		close(stopLoad)
		wg.Wait()
	}()
	require.Eventually(t, func() bool { return srvs[0].svc.calls.Load() > 50 }, testTimeout, time.Millisecond,
		"node 1 serves its share first")

	frozeAt := time.Now()
	fz.frozen.Store(true)
	require.Eventually(t, func() bool { return statusOf(t, e.m, 1).Breaker != breaker.StateClosed },
		testTimeout, time.Millisecond, "node 1's breaker opens")
	ejectedAfter := time.Since(frozeAt)
	stuckAtEjection := fz.stuck.Load()

	// Go on until every call that met the hung node has ended.
	require.Eventually(t, func() bool { return statusOf(t, e.m, 1).InFlight == 0 }, testTimeout, time.Millisecond,
		"the calls stuck on node 1 end with their deadline")
	close(stopLoad)
	wg.Wait()
	stopLoad = make(chan struct{})

	mu.Lock()
	defer mu.Unlock()
	t.Logf("node 1 left routing %s after it froze; %d calls in all, %d failed; %d attempts reached node 1 frozen, %d of them after its breaker opened",
		ejectedAfter.Round(time.Millisecond), calls, len(failed), fz.stuck.Load(), fz.stuck.Load()-stuckAtEjection)
	for i, err := range failed {
		if i == 3 {
			break
		}
		t.Logf("failed: %v", err)
	}
	require.LessOrEqual(t, len(failed), workers, "only calls that met the hung node before it left routing may fail")
	require.LessOrEqual(t, fz.stuck.Load()-stuckAtEjection, int64(e.m.cfg.Breaker.HalfOpenProbes),
		"out of routing once its breaker opened")
	require.Greater(t, calls, 10*workers, "the others kept serving")
	if len(opts) > 0 {
		require.Empty(t, failed, "every attempt on the hung node failed over in time")
	}
}

// deadlineSeer records, for each call of the test service, whether the
// server saw a deadline and which, and holds the call until its context
// ends: the call's cancellation by the client or the deadline it carried.
type deadlineSeer struct {
	mu        sync.Mutex
	deadlines []time.Time // zero: the call carried none
	ended     atomic.Int64
}

func (d *deadlineSeer) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if info.FullMethod != "/cmtest.Test/Unary" {
		return h(ctx, req)
	}
	dl, _ := ctx.Deadline()
	d.mu.Lock()
	d.deadlines = append(d.deadlines, dl)
	d.mu.Unlock()
	<-ctx.Done()
	d.ended.Add(1)
	return nil, ctx.Err()
}

func (d *deadlineSeer) seen() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.deadlines...)
}

// An attempt's own time bounds the call on the client only: the server
// sees the caller's deadline (none here, then one), never the attempt's,
// and the handler's context still ends when the attempt's time runs out,
// because the client cancels the call.
func TestAttemptTimeoutCancelsTheServersCall(t *testing.T) {
	e := newEnv(t, nil)
	seer := &deadlineSeer{}
	s := startServer(t, grpc.UnaryInterceptor(seer.intercept))
	e.node(1, s.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitOnline(1)

	err := e.m.Invoke(context.Background(), testRole, callUnary, AttemptTimeout(200*time.Millisecond), Attempts(1))
	require.True(t, errors.Is(err, errAttemptTimeout), "%+v", err)
	require.Eventually(t, func() bool { return seer.ended.Load() == 1 }, testTimeout, time.Millisecond,
		"the server's call ends with the attempt")
	require.Equal(t, []time.Time{{}}, seer.seen(), "no deadline on the wire without the caller's")

	callerDeadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), callerDeadline)
	defer cancel()
	err = e.m.Invoke(ctx, testRole, callUnary, AttemptTimeout(200*time.Millisecond), Attempts(1))
	require.True(t, errors.Is(err, errAttemptTimeout), "%+v", err)
	require.Eventually(t, func() bool { return seer.ended.Load() == 2 }, testTimeout, time.Millisecond)
	seen := seer.seen()
	require.Len(t, seen, 2)
	// grpc-timeout carries the time left in whole units: the server's
	// deadline is the caller's to within the call's transit.
	require.WithinDuration(t, callerDeadline, seen[1], time.Minute, "the caller's deadline, not the attempt's 200 ms")
}
