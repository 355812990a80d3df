//go:build e2e

package main

// The status page in a real browser: make e2e (not part of make test) runs
// the demo's cluster, loads its status page in headless Chromium, checks
// the node rows as the page's script renders them, kills a node and
// freezes another, checks the killed one's row turning red, and saves a
// screenshot as docs/img/status-page.png.

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/debughttp"
)

// screenshot is where the page's picture goes, from this package's
// directory.
const screenshot = "../../docs/img/status-page.png"

// chromium runs headless Chromium with args and returns its stdout.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "chromium"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--headless=new", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=2500"}, args...)...)
	out, err := cmd.Output()
	require.NoError(t, err, "%s %v", bin, args)
	return string(out)
}

func snapshot(t require.TestingT, url string) debughttp.Snapshot {
	resp, err := http.Get(url + "/debug/clientmanager")
	require.NoError(t, err)
	defer resp.Body.Close()
	var s debughttp.Snapshot
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	return s
}

func TestE2EStatusPage(t *testing.T) {
	if _, err := exec.LookPath(cmpOr(os.Getenv("CHROMIUM"), "chromium")); err != nil {
		t.Fatalf("chromium is not installed (make e2e installs Debian's): %v", err)
	}
	cfg := defaultDemoConfig()
	cfg.Faults, cfg.Duration = false, time.Hour
	cfg.TTL = 30 * time.Second // the killed and the frozen nodes stay listed for the picture
	cfg.HTTPAddr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, &out, cfg) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(time.Minute):
			t.Error("the demo did not stop")
		}
	}()
	eventually(t, &out, "  status page: http://", "== the load runs for")
	s := out.String()
	base := requireLine(t, s, `status page: (http://\S+)/debug/clientmanager/ui`)[1]
	page := base + "/debug/clientmanager/ui"
	pid := func(name string) int {
		p, err := strconv.Atoi(requireLine(t, s, `^  `+name+`\s+(\d+)\s`)[1])
		require.NoError(t, err)
		return p
	}

	// Three query nodes online, as the page's script renders them.
	dom := chromium(t, "--dump-dom", page)
	require.Contains(t, dom, `data-source="live"`, "the script rendered the page from the JSON")
	rows := regexp.MustCompile(`<tr class="node ok" data-node="(\d+)" data-state="online">`).FindAllStringSubmatch(dom, -1)
	require.GreaterOrEqual(t, len(rows), 4, "3 query nodes and the active coordinator online:\n%s", dom)

	// kill -9 qn-b, SIGSTOP qn-c: the first turns red, the second's
	// breaker opens.
	var victim int64
	for _, r := range snapshot(t, base).Roles[0].Nodes {
		if r.Address == requireLine(t, s, `^  qn-b\s+\d+\s+(\S+)\s`)[1] {
			victim = r.NodeID
		}
	}
	require.NotZero(t, victim)
	require.NoError(t, syscall.Kill(pid("qn-b"), syscall.SIGKILL))
	require.NoError(t, syscall.Kill(pid("qn-c"), syscall.SIGSTOP))
	defer func() { _ = syscall.Kill(pid("qn-c"), syscall.SIGCONT) }()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var open bool
		for _, n := range snapshot(c, base).Roles[0].Nodes {
			open = open || n.Breaker == "open"
		}
		require.True(c, open, "qn-c's breaker opens")
	}, 20*time.Second, 100*time.Millisecond)

	path, err := filepath.Abs(screenshot)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	chromium(t, "--screenshot="+path, "--window-size=1280,1000", page)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(10_000), "a picture, not an empty page")
	t.Logf("screenshot saved as %s", path)

	dom = chromium(t, "--dump-dom", page)
	require.Regexp(t, `<tr class="node bad" data-node="`+strconv.FormatInt(victim, 10)+`" data-state="suspect">`, dom)
	require.Regexp(t, `<span class="badge (bad|warn)">(open|half-open)</span>`, dom, "qn-c's breaker")
	require.NoError(t, syscall.Kill(pid("qn-c"), syscall.SIGCONT))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
