package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/session"
)

// gathered returns the value of the gauge name with label role=role in
// reg, and whether reg holds it.
func gathered(t *testing.T, reg prometheus.Gatherer, name, role string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "role" && l.GetValue() == role {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// The watchers of the manager's dependencies report to the manager's
// registerer (session metrics, made once per Manager) and run on its
// clock, so discovery's known sessions and last sync time are exported.
func TestDependencyWatcherMetricsAndClock(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	clock := clockwork.NewFakeClockAt(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC))
	dialer := dialerFunc(func(context.Context, session.Session) (Conn, error) { return newFakeConn(), nil })
	e := newEnv(t, nil, WithRegisterer(reg), WithClock(clock), WithDialer(dialer))
	e.node(1, "192.0.2.1:9")
	e.node(2, "192.0.2.2:9")
	require.NoError(t, e.m.AddDependency(testRole))
	require.Eventually(t, func() bool {
		v, ok := gathered(t, reg, "clientmanager_session_known_sessions", testRole)
		return ok && v == 2
	}, testTimeout, time.Millisecond, "clientmanager_session_known_sessions{role=%q}", testRole)
	last, ok := gathered(t, reg, "clientmanager_session_last_sync_timestamp_seconds", testRole)
	require.True(t, ok)
	require.Equal(t, float64(clock.Now().Unix()), last, "last sync on the manager's clock")
}
