package startup

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/etcdtest"
)

// TestDependencyWaitReported checks that a wait for dependencies says what
// it waits for: once when it starts, then every dependencyReportInterval
// at Warn level while a required role is still offline. Optional roles are
// never named.
func TestDependencyWaitReported(t *testing.T) {
	m := etcdtest.Start(t)
	clock := clockwork.NewFakeClock()
	cfg := testConfig("querynode")
	cfg.SessionConfig.RootPath = "depwait/meta"
	cfg.Dependencies = []Dependency{{Role: "rootcoord"}, {Role: "datacoord"}, {Role: "indexnode", Optional: true}}
	cfg.DependencyTimeout = time.Minute
	mc := clientmanager.DefaultConfig()
	mc.SessionConfig = cfg.SessionConfig
	mgr, err := clientmanager.New(m.Client, mc,
		clientmanager.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))))
	require.NoError(t, err)
	defer func() { require.NoError(t, mgr.Close()) }()
	core, logs := observer.New(zapcore.InfoLevel)
	h := startRunner(t, m.Client, mgr, cfg, &testComponent{}, WithClock(clock), WithLogger(zap.New(core)))
	h.waitState(StateWaitingDependencies)

	awaited := func(e observer.LoggedEntry) any { return e.ContextMap()["awaited"] }
	require.Eventually(t, func() bool { return logs.FilterMessage("waiting for required dependencies").Len() == 1 },
		testTimeout, 5*time.Millisecond)
	first := logs.FilterMessage("waiting for required dependencies").All()[0]
	require.Equal(t, zapcore.InfoLevel, first.Level)
	require.Equal(t, []any{"rootcoord", "datacoord"}, awaited(first))

	// The report ticker and the DependencyTimeout timer.
	require.NoError(t, clock.BlockUntilContext(testCtx(t), 2))
	for i := 1; i <= 2; i++ {
		clock.Advance(dependencyReportInterval)
		still := func() *observer.ObservedLogs {
			return logs.FilterMessageSnippet("still waiting for required dependencies")
		}
		require.Eventually(t, func() bool { return still().Len() == i }, testTimeout, 5*time.Millisecond)
		e := still().All()[i-1]
		require.Equal(t, zapcore.WarnLevel, e.Level)
		require.Equal(t, []any{"rootcoord", "datacoord"}, awaited(e))
		require.Equal(t, time.Duration(i)*dependencyReportInterval, e.ContextMap()["waited"])
		require.Contains(t, e.Message, "dependency cycle")
	}
	require.NoError(t, h.stop())
}
