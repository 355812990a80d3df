package session

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/internal/metricsdoc"
)

// Every session metric is listed in docs/metrics.md with its type and
// labels, and none is listed that is not registered; promlint finds no
// problem with them.
func TestMetricsDocumentedAndLinted(t *testing.T) {
	reg := metricsdoc.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	for _, v := range []func(...string){
		func(l ...string) { m.Registrations.WithLabelValues(l...).Inc() },
		func(l ...string) { m.LeasesLost.WithLabelValues(l...).Inc() },
		func(l ...string) { m.KeepAliveFailed.WithLabelValues(l...).Inc() },
		func(l ...string) { m.Disconnects.WithLabelValues(l...).Inc() },
		func(l ...string) { m.ReregisterFails.WithLabelValues(l...).Inc() },
		func(l ...string) { m.ActiveTerms.WithLabelValues(l...).Inc() },
		func(l ...string) { m.Fenced.WithLabelValues(l...).Inc() },
		func(l ...string) { m.State.WithLabelValues(l...).Set(1) },
		func(l ...string) { m.MalformedSkip.WithLabelValues(l...).Inc() },
		func(l ...string) { m.FilteredSkip.WithLabelValues(l...).Inc() },
		func(l ...string) { m.KnownSessions.WithLabelValues(l...).Set(1) },
		func(l ...string) { m.LastSyncSecond.WithLabelValues(l...).Set(1) },
	} {
		v("querynode")
	}
	m.Events.WithLabelValues("querynode", EventAdd.String()).Inc()
	m.Resyncs.WithLabelValues("querynode", "compacted").Inc()
	metricsdoc.Check(t, reg, "clientmanager_session_")
}
