package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/debughttp"
	"github.com/coordkit/clientmanager/internal/etcdtest"
)

// demoTestTimeout bounds a whole demo run in the tests: the timeline at
// -speed 10 takes about 20 s, more under -race.
const demoTestTimeout = 3 * time.Minute

// fastDemo is the demo's configuration in the tests.
func fastDemo() demoConfig {
	cfg := defaultDemoConfig()
	cfg.Speed = 10
	cfg.TTL = 2 * time.Second
	cfg.Rate = 50
	return cfg
}

func demoContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), demoTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// section returns the lines of out from the line starting with from up to
// the next line starting with "==".
func section(t *testing.T, out, from string) string {
	t.Helper()
	i := strings.Index(out, "\n"+from)
	require.GreaterOrEqual(t, i, 0, "no section %q in:\n%s", from, out)
	rest := out[i+1:]
	if j := strings.Index(rest[len(from):], "\n=="); j >= 0 {
		return rest[:len(from)+j]
	}
	return rest
}

func requireLine(t *testing.T, out, pattern string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)` + pattern).FindStringSubmatch(out)
	require.NotNil(t, m, "no line matches %q in:\n%s", pattern, out)
	return m
}

// requireCleanedUp checks that the demo left no etcd data and no process
// behind.
func requireCleanedUp(t *testing.T, out string) {
	t.Helper()
	if m := regexp.MustCompile(`\(data in (\S+)\)`).FindStringSubmatch(out); m != nil {
		_, err := os.Stat(m[1])
		require.True(t, os.IsNotExist(err), "%s left behind", m[1])
	}
	for _, m := range regexp.MustCompile(`(?m)^  (?:rootcoord-\d+|qn-[a-z]+)\s+(\d+)\s`).FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[1])
		require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "process %d left behind", pid)
	}
}

// TestDemo plays the whole timeline fast and checks every step's figures
// and the summary.
func TestDemo(t *testing.T) {
	var out syncBuffer
	start := time.Now()
	require.NoError(t, runDemo(demoContext(t), &out, fastDemo()))
	s := out.String()
	t.Logf("demo took %s:\n%s", time.Since(start), s)

	requireLine(t, s, `^  rootcoord-1\s+\d+\s+127\.0\.0\.1:\d+\s+\d+\s+Healthy$`)
	requireLine(t, s, `^  rootcoord-2\s+\d+\s+127\.0\.0\.1:\d+\s+\d+\s+StandBy$`)
	for _, n := range []string{"qn-a", "qn-b", "qn-c"} {
		requireLine(t, s, `^  `+n+`\s+\d+\s+127\.0\.0\.1:\d+\s+\d+\s+Healthy$`)
	}
	requireLine(t, s, `^== steady: \d+ calls to querynode in \S+, 0 failed`)

	t.Run("kill -9", func(t *testing.T) {
		st := section(t, s, "== 1.")
		requireLine(t, st, `node \d+ suspect for the client manager`)
		requireLine(t, st, `qn-b restarted on .*: node \d+ online`)
		requireLine(t, st, `session gone from etcd`)
	})
	t.Run("SIGSTOP", func(t *testing.T) {
		st := section(t, s, "== 2.")
		requireLine(t, st, `circuit breaker open after \d+ failures in a row`)
		requireLine(t, st, `SIGCONT qn-c`)
		requireLine(t, st, `breaker closed: node \d+ back in rotation`)
	})
	t.Run("all down", func(t *testing.T) {
		st := section(t, s, "== 3.")
		m := requireLine(t, st, `(\d+) calls after, (\d+) failed at once: p50 (\S+),`)
		require.Equal(t, m[1], m[2], "every call failed")
		require.NotEqual(t, "0", m[1])
		requireLine(t, st, `the error: \*clientmanager\.NodeError .*ErrServiceUnavailable\) = true; status.Code = Unavailable`)
	})
	t.Run("back up", func(t *testing.T) {
		st := section(t, s, "== 4.")
		requireLine(t, st, `first call served`)
		requireLine(t, st, `all online: qn-a node \d+, qn-b node \d+, qn-c node \d+`)
	})
	t.Run("failover", func(t *testing.T) {
		st := section(t, s, "== 5.")
		requireLine(t, st, `rootcoord-2 Healthy: the active rootcoord`)
		requireLine(t, st, `rootcoord-3 started: the new standby`)
	})
	t.Run("etcd outage", func(t *testing.T) {
		st := section(t, s, "== 6.")
		requireLine(t, st, `etcd stopped`)
		requireLine(t, st, `rootcoord-2 fenced itself \(StandBy\)`)
		requireLine(t, st, `etcd started again`)
		requireLine(t, st, `the query nodes stayed Healthy throughout`)
	})
	t.Run("rolling restart", func(t *testing.T) {
		st := section(t, s, "== 7.")
		for _, n := range []string{"qn-a", "qn-b", "qn-c"} {
			requireLine(t, st, n+`: out of rotation in \S+, stopped in \S+; node \d+ online`)
		}
	})
	t.Run("summary", func(t *testing.T) {
		st := section(t, s, "== summary")
		requireLine(t, st, `^  #\s+FAULT\s+DETECTED\s+RECOVERED\s+CALLS\s+FAILED\s+EXPECTED\s+OK\s+NOTE$`)
		rows := regexp.MustCompile(`(?m)^  ([1-7])  .*\s(yes|NO)\s`).FindAllStringSubmatch(st, -1)
		require.Len(t, rows, 7, st)
		for _, r := range rows {
			assert.Equal(t, "yes", r[2], "step %s not as expected:\n%s", r[1], st)
		}
		requireLine(t, st, `^  1\s+kill -9 qn-b\s+suspect in \S+\s+restarted, online in \S+\s+\d+\s+0\s`)
		requireLine(t, st, `^  2\s+SIGSTOP qn-c 1\.00s\s+breaker open in \S+\s+closed \S+ after SIGCONT\s+\d+\s+0\s`)
		requireLine(t, st, `^  3\s+all 3 query nodes down\s+none available in \S+`)
		requireLine(t, st, `^  6\s+etcd down 4\.00s\s+rootcoord-2 fenced in \S+`)
		requireLine(t, st, `^  7\s+rolling restart\s+out of rotation in ≤ \S+\s+all replaced in \S+\s+\d+\s+0\s`)
	})
	requireLine(t, s, `^  13 components stopped$`)
	requireLine(t, s, `^  etcd closed, \S+ removed$`)
	requireCleanedUp(t, s)
}

// TestDemoNoFaults runs the cluster under load with its status page, and
// reads it.
func TestDemoNoFaults(t *testing.T) {
	cfg := fastDemo()
	cfg.Faults, cfg.Nodes, cfg.Duration = false, 1, time.Hour
	cfg.HTTPAddr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(demoContext(t))
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, &out, cfg) }()
	eventually(t, &out, "== the load runs for 1h0m0s", "  status page: http://")
	url := requireLine(t, out.String(), `status page: (http://\S+)/debug/clientmanager/ui`)[1]

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := http.Get(url + "/debug/clientmanager")
		require.NoError(c, err)
		defer resp.Body.Close()
		var snap debughttp.Snapshot
		require.NoError(c, json.NewDecoder(resp.Body).Decode(&snap))
		require.Len(c, snap.Roles, 2)
		require.Equal(c, "querynode", snap.Roles[0].Role)
		require.Equal(c, "healthy", snap.Roles[0].Health)
		require.Len(c, snap.Roles[0].Nodes, 1)
		require.Greater(c, snap.Roles[0].Nodes[0].LatencyMS, 0.0)
		require.Equal(c, "rootcoord", snap.Roles[1].Role)
		require.Equal(c, 1, snap.Roles[1].Available, "the active one; the standby is suspect (NOT_SERVING)")
	}, defaultTestTimeout, 50*time.Millisecond)
	// Every component serves its own page.
	child := requireLine(t, out.String(), `^  qn-a\s+\d+\s+\S+\s+\d+\s+Healthy\s+(http://\S+)$`)[1]
	resp, err := http.Get(strings.TrimSuffix(child, "/debug/clientmanager/ui") + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	eventually(t, &out, " querynode: ") // a line a second
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "an interruption is a clean stop")
	case <-time.After(demoTestTimeout):
		t.Fatal("the demo did not stop")
	}
	s := out.String()
	require.NotContains(t, s, "== 1.")
	requireLine(t, s, `^  \d\d:\d\d:\d\d  querynode: \d+ calls, 0 failed, p99 \S+; served by qn-a \d+ · rootcoord: \d+ calls`)
	requireCleanedUp(t, s)
}

// failingWriter fails every write once it has seen after.
type failingWriter struct {
	mu     sync.Mutex
	buf    strings.Builder
	after  string
	broken bool
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken {
		return 0, syscall.EPIPE
	}
	w.buf.Write(p)
	w.broken = strings.Contains(w.buf.String(), w.after)
	return len(p), nil
}

func (w *failingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestDemoStdoutClosed: `cmctl demo | head` stops the demo, which cleans
// up as on an interruption.
func TestDemoStdoutClosed(t *testing.T) {
	cfg := fastDemo()
	cfg.Nodes = 2
	w := &failingWriter{after: "== steady"}
	require.NoError(t, runDemo(demoContext(t), w, cfg))
	s := w.String()
	require.NotContains(t, s, "== 1.")
	requireCleanedUp(t, s)
}

// TestDemoInterruptedDuringStart: Ctrl-C before the cluster is up.
func TestDemoInterruptedDuringStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, &out, fastDemo()) }()
	eventually(t, &out, "components: ")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "an interruption is a clean stop")
	case <-time.After(demoTestTimeout):
		t.Fatal("the demo did not stop")
	}
	s := out.String()
	requireLine(t, s, `^== interrupted: `)
	requireLine(t, s, `^  etcd closed, \S+ removed$`)
	requireCleanedUp(t, s)
}

// TestDemoExternalEtcd runs on a real etcd under a root path of its own,
// and removes its keys.
func TestDemoExternalEtcd(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := fastDemo()
	cfg.Faults, cfg.Nodes, cfg.Duration = false, 1, 500*time.Millisecond
	cfg.EtcdEndpoints = []string{m.Endpoint()}
	var out syncBuffer
	require.NoError(t, runDemo(demoContext(t), &out, cfg))
	s := out.String()
	root := requireLine(t, s, `^cmctl demo: etcd at \S+ \(external\), sessions under (cmctl-demo/[0-9a-f]+)/`)[1]
	requireLine(t, s, `^  removed the demo's keys under `+regexp.QuoteMeta(root)+`/$`)
	resp, err := m.Client.Get(testContext(t), root+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count)
}

func TestDemoConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*demoConfig)
		want   string
	}{
		{"no nodes", func(c *demoConfig) { c.Nodes = 0 }, "-nodes (0) must be in [1, 20]"},
		{"one node with faults", func(c *demoConfig) { c.Nodes = 1 }, "-nodes (1) must be ≥ 2 for the fault timeline"},
		{"zero speed", func(c *demoConfig) { c.Speed = 0 }, "-speed (0) must be > 0"},
		{"negative duration", func(c *demoConfig) { c.Duration = -time.Second }, "-duration (-1s)"},
		{"fractional ttl", func(c *demoConfig) { c.TTL = 2500 * time.Millisecond }, "-ttl (2.5s)"},
		{"short ttl with faults", func(c *demoConfig) { c.TTL = time.Second }, "-ttl (1s) must be ≥ 2s"},
		{"no rate", func(c *demoConfig) { c.Rate = 0 }, "-rate (0)"},
		{"bad root", func(c *demoConfig) { c.RootPath = "/" }, `-root-path "/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultDemoConfig()
			tc.change(&cfg)
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // if the config passed, the demo would stop at once
			require.ErrorContains(t, runDemo(ctx, &syncBuffer{}, cfg), tc.want)
		})
	}
	require.NoError(t, defaultDemoConfig().validate())
	cfg := defaultDemoConfig()
	cfg.Faults, cfg.Nodes, cfg.TTL = false, 1, time.Second
	require.NoError(t, cfg.validate(), "one node and a short TTL without faults")
}

func TestNodeLetter(t *testing.T) {
	for i, want := range map[int]string{0: "a", 1: "b", 25: "z", 26: "aa", 27: "ab", 51: "az", 52: "ba", 701: "zz", 702: "aaa"} {
		require.Equal(t, want, nodeLetter(i), "nodeLetter(%d)", i)
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 41 * time.Microsecond: "41µs", 2300 * time.Microsecond: "2.3ms", 412 * time.Millisecond: "412ms",
		1234 * time.Millisecond: "1.23s", 90 * time.Second: "1m30s",
	} {
		require.Equal(t, want, fmtDur(d))
	}
}

func TestQuantiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	p50, p99, mx := quantiles(ds)
	require.Equal(t, []time.Duration{51, 100, 100}, []time.Duration{p50, p99, mx})
	p50, p99, mx = quantiles(nil)
	require.Zero(t, p50+p99+mx)
}

// TestLiveTable: on a terminal the -duration phase redraws a table of the
// nodes in place.
func TestLiveTable(t *testing.T) {
	now := time.Now()
	st := []clientmanager.NodeStatus{
		{NodeID: 3, Role: "querynode", State: clientmanager.NodeOnline, InFlight: 2},
		{NodeID: 4, Role: "querynode", State: clientmanager.NodeSuspect, Breaker: breaker.StateOpen, LastError: "connection reset"},
	}
	var calls []call
	for i := range 10 {
		calls = append(calls, call{role: "querynode", start: now, took: time.Duration(i+1) * time.Millisecond, node: 3})
	}
	calls = append(calls, call{role: "querynode", start: now, node: 4, err: errors.New("boom")})
	text := liveTable(st, []callStats{newCallStats(calls)}, 2*time.Second, func(id int64) string { return "qn-" + strconv.FormatInt(id, 10) })
	requireLine(t, text, `^  ROLE\s+NODE\s+ID\s+STATE\s+BREAKER\s+IN-FLIGHT\s+CALLS/S\s+P99\s+LAST ERROR$`)
	requireLine(t, text, `^  querynode\s+qn-3\s+3\s+online\s+closed\s+2\s+5\s+10ms\s+-$`)
	requireLine(t, text, `^  querynode\s+qn-4\s+4\s+suspect\s+open\s+0\s+0\s+-\s+connection reset$`)
	requireLine(t, text, `failed calls in the last 2.00s: querynode 1, rootcoord 0$`)

	var out syncBuffer
	con := newConsole(&out, nil)
	n := con.redraw(0, "a\nb\n")
	require.Equal(t, 2, n)
	con.redraw(n, "c\n")
	require.Equal(t, "a\nb\n\x1b[2A\x1b[Jc\n", out.String())
	require.False(t, isTerminal(&out))
}
