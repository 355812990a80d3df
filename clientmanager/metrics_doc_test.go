package clientmanager

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/internal/metricsdoc"
)

// Every manager metric is listed in docs/metrics.md with its type and
// labels, and none is listed that is not registered; promlint finds no
// problem with them.
func TestMetricsDocumentedAndLinted(t *testing.T) {
	reg := metricsdoc.NewRegistry()
	m, err := newMetrics(reg)
	require.NoError(t, err)
	m.dial(testRole, nil, false)
	m.nodeState(testRole, noState, NodeOnline)
	m.call(testRole, codes.OK)
	for _, c := range []*counters{m.attempts, m.fastFails, m.unhealthyFails, m.bulkheadRejections,
		m.budgetExhausted, m.pushbackWaits, m.pushbackStops} {
		c.WithLabelValues(testRole).Inc()
	}
	m.breakerTransitions.WithLabelValues(testRole, breaker.StateOpen.String()).Inc()
	m.sessionsRejected.WithLabelValues(testRole, rejectOutsideNetworks).Inc()
	m.bindStatus(func() []NodeStatus {
		return []NodeStatus{{NodeID: 7, Role: testRole, State: NodeOnline, LatencyEWMA: time.Millisecond}}
	})
	metricsdoc.Check(t, reg, "clientmanager_")
}

// alertMetrics returns the metric names the alerts of docs/metrics.md
// use.
func alertMetrics(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../docs/metrics.md")
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	name := regexp.MustCompile(`clientmanager_[a-z_]+`)
	var out []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(line, "## What to alert on")
			continue
		}
		if in {
			out = append(out, name.FindAllString(line, -1)...)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// A manager given a registerer registers every metric of the manager and
// session sections of docs/metrics.md, the discovery metrics of its
// watchers among them, and so every metric the documented alerts use
// except the startup ones.
func TestManagerRegistersDocumentedMetrics(t *testing.T) {
	reg := metricsdoc.NewRegistry()
	newEnv(t, nil, WithRegisterer(reg))
	registered := reg.Names()
	for n, entry := range metricsdoc.Document(t) {
		if entry.Section == "clientmanager_" || entry.Section == "clientmanager_session_" {
			require.Contains(t, registered, n, "registered by New with WithRegisterer")
		}
	}
	alerts := alertMetrics(t)
	require.Contains(t, alerts, "clientmanager_session_last_sync_timestamp_seconds")
	for _, n := range alerts {
		require.Contains(t, registered, n, "used by an alert of docs/metrics.md")
	}
}
