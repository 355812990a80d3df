package clientmanager

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/session"
)

func TestDialAttemptsBackoffReprobeAndRedial(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now())
	type attempt struct {
		at  time.Time
		ctx context.Context
	}
	attempts := make(chan attempt, 16)
	var succeed atomic.Bool
	dialer := dialerFunc(func(ctx context.Context, s session.Session) (Conn, error) {
		attempts <- attempt{at: clock.Now(), ctx: ctx}
		if succeed.Load() {
			return newFakeConn(), nil
		}
		<-ctx.Done() // like a black hole: the attempt's timeout ends it
		return nil, context.Cause(ctx)
	})
	reg := prometheus.NewRegistry()
	const (
		dialTimeout = 30 * time.Second
		reprobe     = 30 * time.Second
	)
	e := newEnv(t, func(c *Config) { c.DialBackoff.Jitter = 0 }, WithClock(clock), WithDialer(dialer), WithRegisterer(reg))
	require.Equal(t, 3, e.m.cfg.DialAttempts)
	require.Equal(t, dialTimeout, e.m.cfg.DialTimeout)
	require.Equal(t, reprobe, e.m.cfg.ReprobeInterval)
	s := e.node(1, "192.0.2.1:9")
	require.NoError(t, e.m.AddDependency(testRole))

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	next := func() attempt {
		t.Helper()
		select {
		case a := <-attempts:
			return a
		case <-ctx.Done():
			t.Fatal("no dial attempt")
			return attempt{}
		}
	}
	none := func() {
		t.Helper()
		select {
		case a := <-attempts:
			t.Fatalf("unexpected dial attempt at %s", a.at)
		default:
		}
	}
	// timeOut fails the attempt in progress by letting its DialTimeout pass.
	timeOut := func(a attempt) {
		t.Helper()
		clock.Advance(dialTimeout)
		<-a.ctx.Done()
		require.NoError(t, clock.BlockUntilContext(ctx, 1+managerTimers), "waiting for the next attempt")
	}

	a1 := next()
	e.waitState(1, NodeConnecting)
	timeOut(a1)
	clock.Advance(99 * time.Millisecond) // backoff after attempt 1: 100 ms
	none()
	clock.Advance(time.Millisecond)
	a2 := next()
	require.Equal(t, dialTimeout+100*time.Millisecond, a2.at.Sub(a1.at))
	timeOut(a2)
	clock.Advance(160 * time.Millisecond) // backoff after attempt 2: 160 ms
	a3 := next()
	require.Equal(t, dialTimeout+160*time.Millisecond, a3.at.Sub(a2.at))
	timeOut(a3)

	// Three attempts spent: unreachable, offline, re-probed every 30 s.
	e.waitState(1, NodeUnreachable)
	require.False(t, e.m.IsOnline(1))
	require.ErrorIs(t, e.m.Invoke(ctx, testRole, callUnary), ErrServiceUnavailable)
	require.Contains(t, e.m.Status()[0].LastError, "deadline exceeded")
	none()
	clock.Advance(reprobe - time.Millisecond)
	none()
	clock.Advance(time.Millisecond)
	a4 := next()
	require.Equal(t, dialTimeout+reprobe, a4.at.Sub(a3.at))
	timeOut(a4) // a probe is one attempt: the next wait is the re-probe interval
	clock.Advance(reprobe - time.Millisecond)
	none()
	require.Equal(t, NodeUnreachable, e.state(1))

	// An update of the session: dialed again at once, no clock needed.
	succeed.Store(true)
	s.Version = "2.4.1"
	e.ss.put(s)
	a5 := next()
	require.Equal(t, a4.at.Add(dialTimeout+reprobe-time.Millisecond), a5.at)
	e.waitOnline(1)

	require.Equal(t, 4.0, metricValue(t, e.m.metrics.dials.WithLabelValues(testRole, "error")))
	require.Equal(t, 1.0, metricValue(t, e.m.metrics.dials.WithLabelValues(testRole, "ok")))
	require.Equal(t, 1.0, metricValue(t, e.m.metrics.nodes.WithLabelValues(testRole, "online")))
	require.Equal(t, 0.0, metricValue(t, e.m.metrics.nodes.WithLabelValues(testRole, "unreachable")))
}

func TestCrashedProcessIsSuspectWithinOneSecond(t *testing.T) {
	e := newEnv(t, nil)
	proc := startChild(t)
	other := startServer(t)
	s := e.node(1, proc.addr)
	e.node(2, other.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitOnline(1)
	e.waitOnline(2)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, e.m.InvokeNode(ctx, 1, healthCheck), "the child serves")

	watch := e.m.WatchClients(ctx, testRole)
	<-watch
	<-watch
	start := time.Now()
	proc.kill(t)
	ev := <-watch
	took := time.Since(start)
	t.Logf("killed node offline after %s", took)
	require.Equal(t, ClientOffline, ev.Type)
	require.Equal(t, int64(1), ev.Client.NodeID())
	require.Less(t, took, time.Second)
	require.False(t, e.m.IsOnline(1))
	require.Equal(t, NodeSuspect, e.state(1))

	resp, err := e.cli.Get(ctx, session.DefaultConfig().Key(testRole, 1))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "its session still exists")
	require.Equal(t, s.LeaseID, resp.Kvs[0].Lease)
	for i := 0; i < 20; i++ {
		c, err := e.m.GetClient(testRole)
		require.NoError(t, err)
		require.Equal(t, int64(2), c.NodeID(), "the suspect node is not picked")
	}
	require.NoError(t, e.m.Invoke(ctx, testRole, healthCheck))
}

func TestHealthNotServingMakesNodeSuspect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		suspect bool
	}{
		{"health checked", true},
		{"health ignored", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *Config) { c.SuspectOnHealth = tc.suspect })
			srv := startServer(t)
			e.node(1, srv.addr)
			require.NoError(t, e.m.AddDependency(testRole))
			e.waitOnline(1)

			srv.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
			if !tc.suspect {
				require.Never(t, func() bool { return !e.m.IsOnline(1) }, 300*time.Millisecond, 10*time.Millisecond)
				return
			}
			e.waitState(1, NodeSuspect)
			require.False(t, e.m.IsOnline(1))
			srv.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			e.waitOnline(1)
		})
	}
}

func TestDialsRunInParallelWithABound(t *testing.T) {
	t.Parallel()
	var cur, peak atomic.Int64
	release := make(chan struct{})
	dialer := dialerFunc(func(ctx context.Context, s session.Session) (Conn, error) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
			return newFakeConn(), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	e := newEnv(t, func(c *Config) { c.MaxParallelDials = 2 }, WithDialer(dialer))
	for i := int64(1); i <= 6; i++ {
		e.node(i, "192.0.2.1:9")
	}
	require.NoError(t, e.m.AddDependency(testRole))
	require.Eventually(t, func() bool { return cur.Load() == 2 }, testTimeout, time.Millisecond)
	require.Never(t, func() bool { return cur.Load() > 2 }, 200*time.Millisecond, time.Millisecond)
	close(release)
	require.Eventually(t, func() bool { return len(e.m.GetClients(testRole)) == 6 }, testTimeout, time.Millisecond)
	require.Equal(t, int64(2), peak.Load())
}

func TestShutdownConnectionIsRedialed(t *testing.T) {
	t.Parallel()
	conns := make(chan *fakeConn, 4)
	dialer := dialerFunc(func(ctx context.Context, s session.Session) (Conn, error) {
		c := newFakeConn()
		conns <- c
		return c, nil
	})
	e := newEnv(t, nil, WithDialer(dialer))
	e.node(1, "192.0.2.1:9")
	require.NoError(t, e.m.AddDependency(testRole))
	first := <-conns
	c := e.waitOnline(1)

	first.setState(connectivityTransientFailure)
	e.waitState(1, NodeSuspect)
	first.setState(connectivityReady)
	e.waitOnline(1)

	first.setState(connectivityShutdown)
	second := <-conns
	require.Eventually(t, first.closed.Load, testTimeout, time.Millisecond)
	e.waitOnline(1)
	c2, err := e.m.ClientByID(1)
	require.NoError(t, err)
	require.Same(t, c, c2, "same incarnation, new connection")
	require.Same(t, second, c2.conn())
}
