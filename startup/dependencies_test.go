package startup

import (
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/etcdtest"
)

func TestNewNeedsManagerForDependencies(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig("querynode")
	cfg.Dependencies = []Dependency{{Role: "rootcoord"}}
	_, err := New(m.Client, nil, cfg, &testComponent{})
	require.ErrorContains(t, err, "Dependencies")
}

func TestRunnerDependencies(t *testing.T) {
	m := etcdtest.Start(t)
	setup := func(t *testing.T, deps ...Dependency) (Config, *clientmanager.Manager) {
		cfg := testConfig("querynode")
		cfg.SessionConfig.RootPath = "deps/" + t.Name()
		cfg.Dependencies = deps
		mc := clientmanager.DefaultConfig()
		mc.SessionConfig = cfg.SessionConfig
		mgr, err := clientmanager.New(m.Client, mc,
			clientmanager.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))))
		require.NoError(t, err)
		t.Cleanup(func() { _ = mgr.Close() })
		return cfg, mgr
	}

	t.Run("missing, continue after the timeout", func(t *testing.T) {
		cfg, mgr := setup(t, Dependency{Role: "rootcoord"})
		start := time.Now()
		h := startRunner(t, m.Client, mgr, cfg, &testComponent{})
		h.waitState(StateHealthy)
		waited := time.Since(start)
		t.Logf("Healthy %s after start, DependencyTimeout %s", waited, cfg.DependencyTimeout)
		require.GreaterOrEqual(t, waited, cfg.DependencyTimeout)
		require.False(t, mgr.IsRoleOnline("rootcoord"))
		require.NoError(t, h.stop())
	})

	t.Run("missing, strict", func(t *testing.T) {
		cfg, mgr := setup(t, Dependency{Role: "rootcoord"})
		cfg.DependencyPolicy = Strict
		comp := &testComponent{initGate: make(chan struct{})}
		h := startRunner(t, m.Client, mgr, cfg, comp)
		history := collect(h.r.Subscribe(testCtx(t)))
		close(comp.initGate)
		err := h.wait()
		require.ErrorIs(t, err, ErrDependencyTimeout)
		var dte *DependencyTimeoutError
		require.True(t, errors.As(err, &dte))
		require.Equal(t, "rootcoord", dte.Role)
		require.Equal(t, []State{StateInitializing, StateWaitingDependencies, StateStopping, StateStopped}, states(<-history))
		require.Equal(t, []string{"Init", "Stop"}, comp.Calls())
	})

	t.Run("registers in time", func(t *testing.T) {
		cfg, mgr := setup(t, Dependency{Role: "rootcoord"})
		cfg.DependencyTimeout = testTimeout
		node := startRunner(t, m.Client, mgr, cfg, &testComponent{})
		node.waitState(StateWaitingDependencies)
		require.Equal(t, StateWaitingDependencies, node.r.State(), "waits while the dependency is missing")

		ccfg := testConfig("rootcoord")
		ccfg.SessionConfig = cfg.SessionConfig
		ccfg.Session.Exclusive = true
		coord := startRunner(t, m.Client, nil, ccfg, &testComponent{})
		coord.waitState(StateHealthy)
		healthy := time.Now()
		node.waitState(StateHealthy)
		t.Logf("node Healthy %s after its dependency became Healthy", time.Since(healthy))
		require.Less(t, time.Since(healthy), cfg.DependencyTimeout/2)
		require.True(t, mgr.IsRoleOnline("rootcoord"))
		require.NoError(t, node.stop())
		require.NoError(t, coord.stop())
	})

	t.Run("optional never waits", func(t *testing.T) {
		cfg, mgr := setup(t, Dependency{Role: "datacoord", Optional: true})
		cfg.DependencyTimeout = testTimeout
		start := time.Now()
		h := startRunner(t, m.Client, mgr, cfg, &testComponent{})
		h.waitState(StateHealthy)
		require.Less(t, time.Since(start), cfg.DependencyTimeout/2)
		require.NoError(t, h.stop())
	})
}
