package clientmanager

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/session"
)

// silentListener accepts TCP connections and never speaks; accepted
// receives each connection it accepted.
func silentListener(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ch := make(chan struct{}, 16)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return lis.Addr().String(), ch
}

// A black hole (a listener that accepts TCP connections and never speaks)
// gives its dial slot back once its TCP connection is established: with a
// single slot, a node added while the black hole is being dialed comes
// online, although neither DialTimeout nor DialSlotTimeout passes (the
// clock is fake and stands still). Its own attempt goes on.
func TestBlackHoleGivesItsDialSlotBackOnConnect(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now())
	e := newEnv(t, func(c *Config) { c.MaxParallelDials = 1 }, WithClock(clock))
	hole, accepted := silentListener(t)
	srv := startServer(t)
	e.node(1, hole)
	require.NoError(t, e.m.AddDependency(testRole))
	select {
	case <-accepted:
	case <-time.After(testTimeout):
		t.Fatal("the black hole was not dialed")
	}
	e.node(2, srv.addr)
	e.waitOnline(2)
	require.Equal(t, NodeConnecting, e.state(1), "the black hole's attempt goes on")
	require.Empty(t, e.m.dialSem, "no slot held")
}

// A Dialer that returns only once its connection is READY holds its slot
// for DialSlotTimeout at most; the attempt goes on without it until
// DialTimeout.
func TestDialSlotTimeoutFreesTheSlotOfASlowAttempt(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now())
	type attempt struct {
		id  int64
		ctx context.Context
	}
	attempts := make(chan attempt, 4)
	dialer := dialerFunc(func(ctx context.Context, s session.Session) (Conn, error) {
		attempts <- attempt{id: s.ServerID, ctx: ctx}
		if s.ServerID == 2 {
			return newFakeConn(), nil
		}
		<-ctx.Done() // never READY
		return nil, context.Cause(ctx)
	})
	const slotTimeout = 2 * time.Second
	e := newEnv(t, func(c *Config) {
		c.MaxParallelDials = 1
		c.DialSlotTimeout = slotTimeout
	}, WithClock(clock), WithDialer(dialer))
	e.node(1, "192.0.2.1:9")
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
	slow := next()
	require.Equal(t, int64(1), slow.id)
	e.node(2, "192.0.2.2:9")
	// Node 2 waits for the slot node 1 holds.
	require.Eventually(t, func() bool { return e.state(2) == NodeConnecting }, testTimeout, time.Millisecond)
	select {
	case a := <-attempts:
		t.Fatalf("node %d dialed while the only slot is held", a.id)
	default:
	}
	clock.Advance(slotTimeout)
	require.Equal(t, int64(2), next().id, "the slot was given back after DialSlotTimeout")
	e.waitOnline(2)
	require.NoError(t, slow.ctx.Err(), "node 1's attempt goes on")
	require.Equal(t, NodeConnecting, e.state(1))
	clock.Advance(e.m.cfg.DialTimeout - slotTimeout)
	<-slow.ctx.Done()
	require.ErrorIs(t, context.Cause(slow.ctx), context.DeadlineExceeded, "until DialTimeout")
}
