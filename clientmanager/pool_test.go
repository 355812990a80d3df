package clientmanager

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/session"
)

// countingDialer makes fakeConns that count their calls.
type countingDialer struct {
	mu    sync.Mutex
	conns []*fakeConn
	calls []*atomic.Int64
}

func (d *countingDialer) Dial(context.Context, session.Session) (Conn, error) {
	c, n := newFakeConn(), new(atomic.Int64)
	c.invoke = func(context.Context, string) error {
		n.Add(1)
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conns = append(d.conns, c)
	d.calls = append(d.calls, n)
	return c, nil
}

func (d *countingDialer) dialed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

func (d *countingDialer) conn(i int) (*fakeConn, *atomic.Int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[i], d.calls[i]
}

func TestConnPoolSpreadsCallsReapsIdleAndClosesOnDel(t *testing.T) {
	t.Parallel()
	const idle = time.Minute
	clock := clockwork.NewFakeClock()
	d := &countingDialer{}
	e := newEnv(t, func(c *Config) {
		c.PoolSize = 3
		c.IdleTimeout = idle
	}, WithClock(clock), WithDialer(d))
	s := e.node(1, "192.0.2.1:9")
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitOnline(1)
	require.Equal(t, 1, d.dialed(), "the pool dials lazily")
	call := func() { require.NoError(t, e.m.Invoke(context.Background(), testRole, callUnary)) }

	// The first calls fall on the pool's turns: they ask for the pooled
	// connections, and the first connection serves them meanwhile.
	for range 3 {
		call()
	}
	require.Eventually(t, func() bool { return d.dialed() == 3 }, testTimeout, time.Millisecond)
	first, _ := d.conn(0)
	var total int64
	for i := range 3 {
		_, n := d.conn(i)
		total += n.Swap(0)
	}
	require.Equal(t, int64(3), total)

	for range 30 {
		call()
	}
	for i := range 3 {
		_, n := d.conn(i)
		require.Equal(t, int64(10), n.Load(), "round robin over connection %d", i)
	}

	// Idle: the pooled connections close, the first stays.
	p1, _ := d.conn(1)
	p2, _ := d.conn(2)
	require.Eventually(t, func() bool {
		clock.Advance(idle / 2)
		return p1.closed.Load() && p2.closed.Load()
	}, testTimeout, time.Millisecond)
	require.False(t, first.closed.Load())
	require.True(t, e.m.IsOnline(1))

	// Used again, they are dialed again.
	for range 3 {
		call()
	}
	require.Eventually(t, func() bool { return d.dialed() == 5 }, testTimeout, time.Millisecond)

	// Del closes every connection of the node.
	e.ss.del(s)
	e.waitOffline(1)
	require.Eventually(t, func() bool {
		for i := range d.dialed() {
			if c, _ := d.conn(i); !c.closed.Load() {
				return false
			}
		}
		return true
	}, testTimeout, time.Millisecond)
}

func TestConnPoolPickFallsBackToTheFirst(t *testing.T) {
	p := newConnPool(2)
	first := newFakeConn()
	// Slot 1 not dialed: the first connection serves, and a dial is asked for.
	conn, pc := p.pick(first)
	require.Same(t, first, conn.(*fakeConn))
	require.Nil(t, pc)
	require.Len(t, p.want, 1)

	pooled := newFakeConn()
	p.slots[0].Store(&pooledConn{conn: pooled})
	conn, pc = p.pick(first)
	require.Same(t, first, conn.(*fakeConn), "the first's turn")
	require.Nil(t, pc)
	conn, pc = p.pick(first)
	require.Same(t, pooled, conn.(*fakeConn))
	require.Equal(t, int64(1), pc.inflight.Load())
	require.True(t, pc.used.Load())
	pc.end()
	require.Zero(t, pc.inflight.Load())

	pooled.setState(connectivityTransientFailure)
	p.pick(first)
	conn, pc = p.pick(first)
	require.Same(t, first, conn.(*fakeConn), "a pooled connection that is not READY is stood in for")
	require.Nil(t, pc)
}
