package startup

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/internal/metricsdoc"
)

// Each phase's gauge is the time from its start to the transition that
// ends it, on the Runner's clock; Initializing starts with Run, not New;
// states that are not phases (Healthy) record nothing.
func TestPhaseDurationsOnTheClock(t *testing.T) {
	reg := metricsdoc.NewRegistry()
	mt, err := NewMetrics(reg)
	require.NoError(t, err)
	clock := clockwork.NewFakeClock()
	m := newMachine(zap.NewNop(), clock)
	m.phases = mt.forRole("querynode")

	clock.Advance(time.Hour) // between New and Run: not part of Init
	m.phaseBegins()
	steps := []struct {
		spent time.Duration
		to    State
	}{
		{2 * time.Second, StateWaitingDependencies},
		{3 * time.Second, StateStarting},
		{5 * time.Second, StateRegistering},
		{7 * time.Second, StateHealthy},
		{time.Minute, StateStopping},
		{11 * time.Second, StateStopped},
	}
	for _, s := range steps {
		clock.Advance(s.spent)
		_, err := m.transition(s.to, "step")
		require.NoError(t, err)
	}
	phase := func(s State) float64 {
		return testutil.ToFloat64(mt.PhaseSeconds.WithLabelValues("querynode", s.String()))
	}
	require.Equal(t, 2.0, phase(StateInitializing))
	require.Equal(t, 3.0, phase(StateWaitingDependencies))
	require.Equal(t, 5.0, phase(StateStarting))
	require.Equal(t, 7.0, phase(StateRegistering))
	require.Equal(t, 11.0, phase(StateStopping))
	require.Equal(t, 5, testutil.CollectAndCount(mt.PhaseSeconds), "one series per phase, none for Healthy")
}

// A Runner given WithMetrics records every phase it went through, under
// its role; and the startup metrics are those docs/metrics.md lists, clean
// under promlint.
func TestRunnerRecordsPhasesAndMetricsAreDocumented(t *testing.T) {
	member := etcdtest.Start(t)
	reg := metricsdoc.NewRegistry()
	mt, err := NewMetrics(reg)
	require.NoError(t, err)
	_, err = NewMetrics(reg)
	require.Error(t, err, "one Metrics per registerer")

	h := startRunner(t, member.Client, nil, testConfig("querynode"), &testComponent{}, WithMetrics(mt))
	h.waitState(StateHealthy)
	require.NoError(t, h.stop())
	require.Equal(t, len(phases), testutil.CollectAndCount(mt.PhaseSeconds), "a series for each phase")
	registering := testutil.ToFloat64(mt.PhaseSeconds.WithLabelValues("querynode", StateRegistering.String()))
	require.Positive(t, registering, "registering takes etcd round trips")
	metricsdoc.Check(t, reg, "clientmanager_startup_")
}
