package debughttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/debughttp"
	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

type nopComponent struct{}

func (nopComponent) Init(context.Context) error  { return nil }
func (nopComponent) Start(context.Context) error { return nil }
func (nopComponent) Stop(context.Context) error  { return nil }

func getJSON(t require.TestingT, url string) (int, debughttp.Snapshot) {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var s debughttp.Snapshot
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.Header.Get("Content-Type") == "application/json" {
		require.NoError(t, json.Unmarshal(b, &s))
	}
	return resp.StatusCode, s
}

// runComponent runs a Runner of role serving on a loopback port until the
// test ends, and waits until it is Healthy.
func runComponent(t *testing.T, m *etcdtest.Member, role string) {
	t.Helper()
	cfg := startup.DefaultConfig()
	cfg.Session = session.Session{ServerName: role, Version: "2.4.0"}
	cfg.SessionConfig.TTL = 2 * time.Second
	cfg.LameDuck = 0
	r, err := startup.New(m.Client, nil, cfg, nopComponent{})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, grpc.NewServer(r.ServerOptions()...), lis) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, r.Close())
	})
	wctx, wcancel := context.WithTimeout(context.Background(), etcdtest.DefaultTestTimeout)
	defer wcancel()
	require.NoError(t, r.WaitForState(wctx, startup.StateHealthy))
}

// TestRealComponents mounts the handler on a real Runner and Manager on
// embedded etcd: a data coordinator that depends on a query node.
func TestRealComponents(t *testing.T) {
	m := etcdtest.Start(t)
	// Registered before the manager watches: see the report of
	// startup.Runner's identity race in cmd/cmctl's demo.
	runComponent(t, m, "querynode")
	reg := prometheus.NewRegistry()
	sm, err := session.NewMetrics(reg)
	require.NoError(t, err)

	cfg := startup.DefaultConfig()
	cfg.Session = session.Session{ServerName: "datacoord", Version: "2.4.0"}
	cfg.SessionConfig.TTL = 2 * time.Second
	cfg.Dependencies = []startup.Dependency{{Role: "querynode"}}
	cfg.LameDuck = 0
	mc := clientmanager.DefaultConfig()
	mc.SessionConfig = cfg.SessionConfig
	mgr, err := clientmanager.New(m.Client, mc, clientmanager.WithRegisterer(reg), clientmanager.WithSessionMetrics(sm))
	require.NoError(t, err)
	defer mgr.Close()
	r, err := startup.New(m.Client, mgr, cfg, nopComponent{}, startup.WithSessionOptions(session.WithMetrics(sm)))
	require.NoError(t, err)
	defer r.Close()

	h, err := debughttp.New(debughttp.Sources{Manager: mgr, Runner: r, Gatherer: reg}, debughttp.DefaultConfig())
	require.NoError(t, err)
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()

	code, _ := getJSON(t, srv.URL+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready before Run")

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, grpc.NewServer(r.ServerOptions()...), lis) }()

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, s := getJSON(c, srv.URL+"/debug/clientmanager")
		require.Equal(c, http.StatusOK, code)
		require.NotNil(c, s.Process)
		require.Equal(c, "Healthy", s.Process.State)
		require.Len(c, s.Roles, 1)
		require.Equal(c, "healthy", s.Roles[0].Health)
		require.Len(c, s.Roles[0].Nodes, 1)
		require.Equal(c, "online", s.Roles[0].Nodes[0].State)
		require.Equal(c, "querynode", s.Roles[0].Role)
		require.Positive(c, s.Roles[0].Revision, "the watcher's revision")
		require.NotNil(c, s.Roles[0].LastSync, "the watcher's last sync")
	}, etcdtest.DefaultTestTimeout, 20*time.Millisecond)
	code, _ = getJSON(t, srv.URL+"/readyz")
	require.Equal(t, http.StatusOK, code)

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(b), `clientmanager_nodes{role="querynode",state="online"} 1`)
	require.Contains(t, string(b), `clientmanager_session_registrations_total{role="datacoord"} 1`)

	cancel()
	require.NoError(t, <-done)
	code, s := getJSON(t, srv.URL+"/debug/clientmanager")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "Stopped", s.Process.State)
	code, _ = getJSON(t, srv.URL+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, s := getJSON(c, srv.URL+"/debug/clientmanager")
		var tos []string
		for _, e := range s.Events {
			if e.Kind == "process" {
				tos = append(tos, e.To)
			}
		}
		require.Subset(c, tos, []string{"Healthy", "Stopping", "Stopped"})
	}, etcdtest.DefaultTestTimeout, 20*time.Millisecond)
}
