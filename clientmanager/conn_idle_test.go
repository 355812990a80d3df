package clientmanager

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
)

// countProbes returns a server option that counts the connector's identity
// probes: one per (re)connect of a connection.
func countProbes(n *atomic.Int64) grpc.ServerOption {
	return grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == identityProbeMethod {
			n.Add(1)
		}
		return h(ctx, req)
	})
}

// nodeLeftOnline returns the logged state changes that took a node out of
// Online.
func nodeLeftOnline(logs *observer.ObservedLogs) []observer.LoggedEntry {
	return logs.FilterMessage("node state changed").Filter(func(le observer.LoggedEntry) bool {
		return le.ContextMap()["from"] == NodeOnline.String()
	}).AllUntimed()
}

// A channel that carries no call goes IDLE after grpc's idle timeout (30
// min by default; 300 ms here, through a dial option that overrides the
// default dialer's "never idle"). IDLE is no failure: the connection is
// told to reconnect and the node stays available, so a healthy idle node
// never flaps Offline/Online, with or without the health watch.
func TestIdleChannelKeepsNodeAvailable(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	for _, health := range []bool{false, true} {
		t.Run(fmt.Sprintf("SuspectOnHealth=%v", health), func(t *testing.T) {
			t.Parallel()
			var probes atomic.Int64
			srv := startServer(t, countProbes(&probes))
			core, logs := observer.New(zapcore.InfoLevel)
			e := newEnv(t, func(c *Config) { c.SuspectOnHealth = health },
				WithLogger(zap.New(core)), WithDialOptions(grpc.WithIdleTimeout(idle)))
			e.node(1, srv.addr)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			events := e.m.WatchClients(ctx, testRole)
			require.NoError(t, e.m.AddDependency(testRole))
			e.waitOnline(1)

			// offline may still be running in require.Never's goroutine
			// when Never returns: the flag and the event reads are locked.
			var mu sync.Mutex
			flapped := false
			offline := func() bool {
				mu.Lock()
				defer mu.Unlock()
				for !flapped {
					select {
					case ev := <-events:
						flapped = ev.Type == ClientOffline
						continue
					default:
					}
					flapped = len(nodeLeftOnline(logs)) > 0 || !e.m.IsOnline(1)
					break
				}
				return flapped
			}
			if !health {
				// No call at all: the channel goes IDLE and reconnects,
				// verified each time, again and again.
				require.Eventually(t, func() bool { return offline() || probes.Load() >= 3 }, testTimeout, time.Millisecond)
			} else {
				// The health watch is a call in progress: five idle periods
				// pass with no flap.
				require.Never(t, offline, 5*idle, 10*time.Millisecond)
			}
			require.False(t, offline(), "a healthy idle node left Online: %v", nodeLeftOnline(logs))
			if !health {
				require.GreaterOrEqual(t, probes.Load(), int64(3), "the channel never went idle")
			}
		})
	}
}
