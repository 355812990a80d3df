package startup

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

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/etcdtest"
)

// TestGracefulStopUnderLoad stops one of two nodes while a caller's
// manager calls the role through Invoke from 4 goroutines: no call fails,
// and the caller's manager logs nothing at Warn or above — a graceful stop
// is not an incident.
func TestGracefulStopUnderLoad(t *testing.T) {
	m := etcdtest.Start(t)
	const role, callers = "querynode", 4
	cfg := testConfig(role)
	cfg.SessionConfig.RootPath = "load/meta"
	a := startRunner(t, m.Client, nil, cfg, &testComponent{})
	b := startRunner(t, m.Client, nil, cfg, &testComponent{})
	a.waitState(StateHealthy)
	b.waitState(StateHealthy)

	core, logs := observer.New(zapcore.DebugLevel)
	mc := clientmanager.DefaultConfig()
	mc.SessionConfig = cfg.SessionConfig
	mgr, err := clientmanager.New(m.Client, mc, clientmanager.WithLogger(zap.New(core)))
	require.NoError(t, err)
	defer func() { require.NoError(t, mgr.Close()) }()
	require.NoError(t, mgr.AddDependency(role))
	require.Eventually(t, func() bool { return len(mgr.GetClients(role)) == 2 },
		testTimeout, 5*time.Millisecond, "both nodes online")
	aID, bID := a.r.Session().ServerID, b.r.Session().ServerID

	var (
		ok       sync.Map // node ID → *atomic.Int64 of calls it served
		total    atomic.Int64
		failures = make(chan error, 1024)
		wg       sync.WaitGroup
	)
	served := func(id int64) int64 {
		if v, found := ok.Load(id); found {
			return v.(*atomic.Int64).Load()
		}
		return 0
	}
	ctx, stopCalls := context.WithCancel(testCtx(t))
	defer stopCalls()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var by int64
				err := mgr.Invoke(ctx, role, func(ctx context.Context, c *clientmanager.Client) error {
					by = c.NodeID()
					return callUnary(ctx, c.Conn(), methodEcho)
				}, clientmanager.Idempotent())
				switch {
				case err == nil:
					v, _ := ok.LoadOrStore(by, new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
					total.Add(1)
				case ctx.Err() == nil:
					select {
					case failures <- err:
					default:
					}
				}
			}
		}()
	}
	require.Eventually(t, func() bool { return served(aID) >= 50 && served(bID) >= 50 },
		testTimeout, 5*time.Millisecond, "both nodes serve calls")

	stopped := time.Now()
	require.NoError(t, a.stop(), "a graceful stop")
	t.Logf("node %d stopped gracefully under load in %s (LameDuck %s)", aID, time.Since(stopped), cfg.LameDuck)
	after := total.Load()
	require.Eventually(t, func() bool { return total.Load() >= after+200 },
		testTimeout, 5*time.Millisecond, "calls go on to the other node")
	stopCalls()
	wg.Wait()
	close(failures)
	t.Logf("calls served: node %d %d, node %d %d", aID, served(aID), bID, served(bID))

	var failed []error
	for err := range failures {
		failed = append(failed, err)
	}
	require.Empty(t, failed, "failed calls")
	var warned []string
	for _, e := range logs.All() {
		if e.Level >= zapcore.WarnLevel {
			warned = append(warned, fmt.Sprintf("%s %q %v", e.Level, e.Message, e.ContextMap()))
		}
	}
	require.Empty(t, warned, "the caller's manager logs nothing at Warn or above")
	require.NoError(t, b.stop())
}
