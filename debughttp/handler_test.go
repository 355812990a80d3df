package debughttp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newServer serves a Handler of src without polling (PollInterval 0: the
// changes are recorded on each request) until the test ends.
func newServer(t *testing.T, src Sources, clock clockwork.Clock) (*httptest.Server, *Handler) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Title = "qn-test"
	cfg.PollInterval = 0
	h, err := New(src, cfg, WithClock(clock))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, h.Close())
	})
	return srv, h
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func twoNodes() []clientmanager.NodeStatus {
	return []clientmanager.NodeStatus{
		{NodeID: 7, Role: "querynode", Address: "127.0.0.1:7007", LeaseID: 0x1f, State: clientmanager.NodeOnline,
			Since: t0.Add(-2 * time.Second), LatencyEWMA: 213 * time.Microsecond, InFlight: 2},
		{NodeID: 9, Role: "querynode", Address: "127.0.0.1:7009", State: clientmanager.NodeSuspect, Since: t0.Add(-90 * time.Second),
			Breaker: breaker.StateOpen, LastError: "connection reset <by peer>", ConsecutiveFailures: 5},
		{NodeID: 3, Role: "rootcoord", Address: "127.0.0.1:7003", State: clientmanager.NodeOnline, Since: t0},
	}
}

func TestEndpoints(t *testing.T) {
	clock := clockwork.NewFakeClockAt(t0)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "debughttp_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	mgr := &fakeManager{health: map[string]clientmanager.HealthVerdict{
		"querynode": {Role: "querynode", Health: clientmanager.Degraded, Reasons: []string{"node 9: circuit breaker open"}},
	}}
	mgr.set(twoNodes()...)
	run := &fakeRunner{state: startup.StateStandBy,
		s: session.Session{ServerName: "querynode", ServerID: 12, Address: "127.0.0.1:7012", LeaseID: 0xabc, Version: "2.4.0"}}
	srv, _ := newServer(t, Sources{Manager: mgr, Runner: run, Gatherer: reg}, clock)
	bare, _ := newServer(t, Sources{}, clock)

	for _, tc := range []struct {
		name     string
		url      string
		code     int
		ctype    string
		contains []string
	}{
		{"healthz", srv.URL + "/healthz", 200, "text/plain", []string{"ok"}},
		{"readyz of a standby", srv.URL + "/readyz", 503, "text/plain", []string{"not ready: StandBy"}},
		{"readyz without a runner", bare.URL + "/readyz", 200, "text/plain", []string{"ready"}},
		{"metrics", srv.URL + "/metrics", 200, "text/plain", []string{"debughttp_test_total 3"}},
		{"no metrics registry", bare.URL + "/metrics", 404, "text/plain", []string{"no metrics registry"}},
		{"json", srv.URL + "/debug/clientmanager", 200, "application/json", []string{`"node_id": 9`}},
		{"ui", srv.URL + "/debug/clientmanager/ui", 200, "text/html", []string{"<title>qn-test · status</title>"}},
		{"ui without sources", bare.URL + "/debug/clientmanager/ui", 200, "text/html", []string{"no roles"}},
		{"unknown path", srv.URL + "/nope", 404, "text/plain", nil},
		{"root redirects to the page", srv.URL + "/", 200, "text/html", []string{"qn-test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ctype, body := get(t, tc.url)
			require.Equal(t, tc.code, code, body)
			require.True(t, strings.HasPrefix(ctype, tc.ctype), ctype)
			for _, s := range tc.contains {
				require.Contains(t, body, s)
			}
		})
	}

	run.setState(startup.StateHealthy)
	code, _, body := get(t, srv.URL+"/readyz")
	require.Equal(t, 200, code, body)
}

func TestJSON(t *testing.T) {
	clock := clockwork.NewFakeClockAt(t0)
	mgr := &fakeManager{health: map[string]clientmanager.HealthVerdict{
		"querynode": {Role: "querynode", Health: clientmanager.Degraded, Reasons: []string{"node 9: circuit breaker open"}},
	}}
	mgr.set(twoNodes()...)
	run := &fakeRunner{state: startup.StateHealthy,
		s: session.Session{ServerName: "datacoord", ServerID: 12, Address: "127.0.0.1:7012", LeaseID: 0xabc, Exclusive: true}}
	srv, _ := newServer(t, Sources{Manager: mgr, Runner: run}, clock)

	_, _, body := get(t, srv.URL+"/debug/clientmanager")
	var s Snapshot
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	require.Equal(t, t0, s.Time.UTC())
	require.Equal(t, &Process{Role: "datacoord", ServerID: 12, Address: "127.0.0.1:7012", LeaseID: "abc",
		Exclusive: true, State: "Healthy", Ready: true}, s.Process)
	require.Len(t, s.Roles, 2)
	qn := s.Roles[0]
	require.Equal(t, "querynode", qn.Role)
	require.Equal(t, "degraded", qn.Health)
	require.Equal(t, []string{"node 9: circuit breaker open"}, qn.Reasons)
	require.Equal(t, 1, qn.Available)
	require.Len(t, qn.Nodes, 2)
	n7, n9 := qn.Nodes[0], qn.Nodes[1]
	require.Equal(t, int64(7), n7.NodeID)
	require.Equal(t, "1f", n7.LeaseID)
	require.Equal(t, "online", n7.State)
	require.Equal(t, "closed", n7.Breaker)
	require.Equal(t, 0.213, n7.LatencyMS)
	require.Equal(t, int64(2), n7.InFlight)
	require.Equal(t, "suspect", n9.State)
	require.Equal(t, "open", n9.Breaker)
	require.Equal(t, 5, n9.ConsecutiveFailures)
	require.Equal(t, "connection reset <by peer>", n9.LastError)
	require.Equal(t, "rootcoord", s.Roles[1].Role)
	require.Equal(t, "healthy", s.Roles[1].Health)

	// The first read records every node as an event, and the process's state.
	require.Len(t, s.Events, 4)
	require.Equal(t, Event{Time: t0, Role: "datacoord", Kind: "process", To: "Healthy"}, normalize(s.Events[3]))
}

// normalize puts an event's time in UTC for comparisons.
func normalize(e Event) Event {
	e.Time = e.Time.UTC()
	return e
}

func TestUI(t *testing.T) {
	clock := clockwork.NewFakeClockAt(t0)
	mgr := &fakeManager{}
	mgr.set(twoNodes()...)
	srv, _ := newServer(t, Sources{Manager: mgr}, clock)
	_, _, page := get(t, srv.URL+"/debug/clientmanager/ui")

	// A table per role, a row per node with its state as a class, colour
	// and text.
	require.Regexp(t, `<table class="nodes" data-role="querynode">`, page)
	require.Regexp(t, `<table class="nodes" data-role="rootcoord">`, page)
	require.Regexp(t, `<tr class="node ok" data-node="7" data-state="online">`, page)
	require.Regexp(t, `<tr class="node bad" data-node="9" data-state="suspect">`, page)
	require.Regexp(t, `<td class="num">2.0s</td>`, page)
	require.Regexp(t, `<td class="num">1m30s</td>`, page)
	require.Regexp(t, `<span class="badge bad">open</span>`, page)
	require.Regexp(t, `<td class="num">0.213 ms</td>`, page)
	require.Contains(t, page, `<div id="app" data-source="server">`, "rendered by the server; the script marks its own renders live")
	// Errors are escaped.
	require.Contains(t, page, "connection reset &lt;by peer&gt;")
	require.NotContains(t, page, "<by peer>")
	// The script polls the JSON next to the page.
	require.Regexp(t, regexp.QuoteMeta(`location.pathname.replace(/\/ui\/?$/, "")`), page)
	require.Contains(t, page, `data-refresh="1000"`)
}

func TestColours(t *testing.T) {
	for _, tc := range []struct{ state, breaker, row string }{
		{"online", "closed", "ok"},
		{"online", "half-open", "warn"},
		{"online", "open", "bad"},
		{"suspect", "closed", "bad"},
		{"unreachable", "open", "bad"},
		{"connecting", "closed", "warn"},
		{"stopping", "open", "warn"},
		{"gone", "closed", "off"},
	} {
		require.Equal(t, tc.row, rowClass(tc.state, tc.breaker), "%s, breaker %s", tc.state, tc.breaker)
	}
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.PollInterval = -time.Second }, "PollInterval (-1s) must be ≥ 0"},
		{func(c *Config) { c.Events = 0 }, "Events (0) must be ≥ 1"},
		{func(c *Config) { c.Refresh = 10 * time.Millisecond }, "Refresh (10ms) must be ≥ 100ms"},
	} {
		cfg := DefaultConfig()
		tc.change(&cfg)
		_, err := New(Sources{}, cfg)
		require.ErrorContains(t, err, tc.want)
	}
}
