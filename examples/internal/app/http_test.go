package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/debughttp"
	"github.com/coordkit/clientmanager/internal/etcdtest"
)

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want func(t *testing.T, f flags)
		err  string
	}{
		{"long names", []string{"-etcd-endpoints", "h:1", "-root-path", "a/b", "-http-addr", ":0"}, func(t *testing.T, f flags) {
			require.Equal(t, "h:1", f.etcd)
			require.Equal(t, "a/b", f.rootPath)
			require.Equal(t, ":0", f.httpAddr)
		}, ""},
		{"short names", []string{"-etcd", "h:2", "-root", "c/d"}, func(t *testing.T, f flags) {
			require.Equal(t, "h:2", f.etcd)
			require.Equal(t, "c/d", f.rootPath)
		}, ""},
		{"strict", []string{"-dependency-policy", "strict"}, func(t *testing.T, f flags) { require.Equal(t, "strict", f.policy) }, ""},
		{"default policy", nil, func(t *testing.T, f flags) { require.Equal(t, "continue", f.policy) }, ""},
		{"unknown policy", []string{"-dependency-policy", "stirct"}, nil,
			`invalid value "stirct" for flag -dependency-policy: must be one of continue, strict`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			f, err := parse("node", tc.args, NodeDefaults, &stderr)
			if tc.err != "" {
				require.Error(t, err)
				require.Contains(t, stderr.String(), tc.err)
				return
			}
			require.NoError(t, err)
			tc.want(t, f)
		})
	}
}

// TestHTTPAddr runs a coordinator with -http-addr and a node: the
// coordinator prints where it serves, /readyz turns 200 once it is
// Healthy, and its JSON shows itself and the node it calls.
func TestHTTPAddr(t *testing.T) {
	m := etcdtest.Start(t)
	common := []string{"-etcd", m.Endpoint(), "-root-path", "httptest/meta", "-ttl", "2s"}
	startProcess(t, "node", NodeDefaults, append(common, "-depends", "rootcoord")...)
	coord := startProcess(t, "coordinator", CoordinatorDefaults,
		append(common, "-http-addr", "127.0.0.1:0", "-call-interval", "50ms")...)
	var base string
	require.Eventually(t, func() bool {
		for _, l := range coord.out.lines() {
			if addr, ok := strings.CutPrefix(l, "http "); ok {
				base = "http://" + addr
				return true
			}
		}
		return false
	}, testTimeout, 10*time.Millisecond, "the http line")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := http.Get(base + "/readyz")
		require.NoError(c, err)
		resp.Body.Close()
		require.Equal(c, http.StatusOK, resp.StatusCode)
	}, testTimeout, 20*time.Millisecond)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := http.Get(base + "/debug/clientmanager")
		require.NoError(c, err)
		defer resp.Body.Close()
		var s debughttp.Snapshot
		require.NoError(c, json.NewDecoder(resp.Body).Decode(&s))
		require.NotNil(c, s.Process)
		require.Equal(c, "rootcoord", s.Process.Role)
		require.Equal(c, "Healthy", s.Process.State)
		require.Len(c, s.Roles, 1)
		require.Equal(c, "querynode", s.Roles[0].Role)
		require.Len(c, s.Roles[0].Nodes, 1)
		require.Equal(c, "online", s.Roles[0].Nodes[0].State)
		require.Greater(c, s.Roles[0].Nodes[0].LatencyMS, 0.0, "its calls are measured")
	}, testTimeout, 20*time.Millisecond)

	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(b), `clientmanager_calls_total{code="OK",role="querynode"}`)
	require.Contains(t, string(b), `clientmanager_session_registrations_total{role="rootcoord"} 1`)
	require.Contains(t, string(b), "go_goroutines")

	require.NoError(t, coord.stop(t))
	_, err = http.Get(base + "/healthz")
	require.Error(t, err, "the server stops with the process")
}
