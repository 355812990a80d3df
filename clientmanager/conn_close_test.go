package clientmanager

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/session"
)

// closingConn is a fakeConn whose Close ends its calls in flight, as a
// grpc.ClientConn's does.
type closingConn struct {
	*fakeConn
	done chan struct{}
	once sync.Once
}

func newClosingConn() *closingConn {
	c := &closingConn{fakeConn: newFakeConn(), done: make(chan struct{})}
	c.invoke = func(ctx context.Context, _ string) error {
		select {
		case <-c.done:
			return status.Error(codes.Canceled, "grpc: the client connection is closing")
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return c
}

func (c *closingConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.fakeConn.Close()
}

// A Del closes the node's connection at once, without waiting for its
// calls in flight: closing it is what ends them, and they fail with
// ErrNodeGone. Another node's calls go on.
func TestDelClosesTheConnectionAtOnce(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(time.Now())
	conns := make(chan *closingConn, 4)
	dialer := dialerFunc(func(context.Context, session.Session) (Conn, error) {
		c := newClosingConn()
		conns <- c
		return c, nil
	})
	e := newEnv(t, nil, WithClock(clock), WithDialer(dialer))
	s1, _ := e.node(1, "192.0.2.1:9"), e.node(2, "192.0.2.2:9")
	require.NoError(t, e.m.AddDependency(testRole))
	c1, c2 := e.waitOnline(1), e.waitOnline(2)
	conn := map[int64]*closingConn{}
	for range 2 {
		c := <-conns
		switch Conn(c) {
		case c1.conn():
			conn[1] = c
		case c2.conn():
			conn[2] = c
		}
	}
	require.Len(t, conn, 2)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done1, done2 := make(chan error, 1), make(chan error, 1)
	go func() { done1 <- callUnary(ctx, c1) }()
	go func() { done2 <- callUnary(ctx, c2) }()
	require.Eventually(t, func() bool { return c1.calls.inFlight() == 1 && c2.calls.inFlight() == 1 }, testTimeout, time.Millisecond)

	e.ss.del(s1)
	err := <-done1 // the fake clock never moves: no drain timer ends this
	require.ErrorIs(t, err, ErrNodeGone, "a call of a removed node reports it")
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.True(t, conn[1].closed.Load())
	require.ErrorIs(t, callUnary(ctx, c1), ErrNodeGone, "the removed client refuses new calls")

	require.False(t, conn[2].closed.Load())
	require.Equal(t, int64(1), c2.calls.inFlight(), "node 2's call goes on")
	cancel()
	err = <-done2
	require.Equal(t, codes.Canceled, status.Code(err))
	require.NotErrorIs(t, err, ErrNodeGone, "the caller's own cancellation is not a gone node")
}
