package metricsdoc

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestParseReadsSectionsAndLabels(t *testing.T) {
	doc, err := Parse(strings.NewReader("# Metrics\n\n" +
		"## Session (`app_session_*`)\n\n| name | type | labels | meaning |\n|---|---|---|---|\n" +
		"| `watch_events_total` | counter | role, type (add, update, del) | events |\n" +
		"| `known` | gauge | — | sessions |\n\n" +
		"## Other\n\n| `ignored` | gauge | role | outside a metrics section |\n"))
	require.NoError(t, err)
	require.Equal(t, map[string]Entry{
		"app_session_watch_events_total": {Name: "app_session_watch_events_total", Section: "app_session_",
			Type: "counter", Labels: []string{"role", "type"}},
		"app_session_known": {Name: "app_session_known", Section: "app_session_", Type: "gauge", Labels: []string{}},
	}, doc)

	_, err = Parse(strings.NewReader("## S (`a_*`)\n| `x` | gauge | | |\n| `x` | gauge | | |\n"))
	require.ErrorContains(t, err, "a_x listed twice")
}

func TestRegistryRecordsNames(t *testing.T) {
	reg := NewRegistry()
	require.NoError(t, reg.Register(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b_total", Help: "b"}, []string{"x"})))
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "a", Help: "a"}))
	require.Equal(t, []string{"a", "b_total"}, reg.Names())
	require.Error(t, reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "a", Help: "a"})), "a duplicate is refused")
	require.Equal(t, []string{"a", "b_total"}, reg.Names())
}
