package clientmanager

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// cutProxy forwards TCP connections to a server until cut: then it closes
// every connection and holds the new ones open without a byte, as an
// address taken over by a frozen process does.
type cutProxy struct {
	addr string
	lis  net.Listener

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, upstream string) *cutProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{addr: lis.Addr().String(), lis: lis}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			p.serve(c, upstream)
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) serve(c net.Conn, upstream string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
	if p.cut {
		return // held, silent
	}
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		_ = c.Close()
		return
	}
	p.conns = append(p.conns, u)
	p.wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer p.wg.Done()
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
	}
	go pipe(u, c)
	go pipe(c, u)
}

// cutNow breaks every connection and black-holes the next ones.
func (p *cutProxy) cutNow() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.closeAll()
}

func (p *cutProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// A connection that breaks takes its node out of routing at once, even
// when grpc's reconnect to the address hangs (a black hole: the connect
// lasts until its timeout, 20 s) and grpc reports the loss as IDLE, as
// pick_first does: the health watch is a call in progress, so the channel
// is not idle by grpc's idleness, and its transport is gone.
func TestLostConnectionTakesNodeOutAtOnce(t *testing.T) {
	t.Parallel()
	for _, lb := range []string{"round_robin", "pick_first"} {
		t.Run(lb, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			other := startServer(t)
			px := newCutProxy(t, srv.addr)
			e := newEnv(t, nil, WithDialOptions(grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+lb+`":{}}]}`)))
			e.node(1, px.addr)
			e.node(2, other.addr)
			require.NoError(t, e.m.AddDependency(testRole))
			e.waitOnline(1)
			e.waitOnline(2)

			px.cutNow()
			// Well within the 20 s the reconnect to the black hole takes.
			require.Eventually(t, func() bool { return !e.m.IsOnline(1) }, 5*time.Second, time.Millisecond,
				"the node of the broken connection is still routed to")
			require.Equal(t, NodeSuspect, e.state(1))
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			for range 10 {
				c, err := e.m.GetClient(testRole)
				require.NoError(t, err)
				require.Equal(t, int64(2), c.NodeID())
			}
			require.NoError(t, e.m.Invoke(ctx, testRole, healthCheck))
		})
	}
}
