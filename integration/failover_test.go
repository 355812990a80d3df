//go:build integration

package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
)

// A way down takes a node out and brings it back.
type wayDown struct {
	name string
	// down takes the node out and returns when the fault began.
	down func(n *procNode) time.Time
	// up brings the node back and returns when it was back: Healthy
	// again (a new process), or thawed.
	up func(n *procNode) time.Time
	// inFlightMayFail: calls in flight on the node when it went down may
	// fail (their attempt hangs until it times out).
	inFlightMayFail bool
}

// restart starts a new process in the slot and returns when it was
// Healthy.
func restart(n *procNode) time.Time {
	n.start()
	n.healthy = n.expectState("Healthy").At
	return n.healthy
}

var waysDown = []wayDown{
	{name: "SIGTERM", down: (*procNode).stop, up: restart},
	{name: "SIGKILL", down: (*procNode).kill, up: restart},
	{name: "SIGSTOP", down: func(n *procNode) time.Time { return n.p.Freeze() },
		up: func(n *procNode) time.Time { return n.p.Thaw() }, inFlightMayFail: true},
}

// loadCallers is the number of goroutines that call in the process
// scenarios, each at most once per loadPace.
const (
	loadCallers = 4
	loadPace    = 10 * time.Millisecond
)

// TestProcFailover runs two node processes of one role under call load
// and takes them down and back in turn, for each way down (SIGTERM,
// SIGKILL, SIGSTOP): node 1 down → every call succeeds via node 2; node
// 1 back and node 2 down → every call via node 1; both down → each call
// fails fast with ErrServiceUnavailable; both back → calls succeed again
// within a second or so.
func TestProcFailover(t *testing.T) {
	for _, w := range waysDown {
		t.Run(w.name, func(t *testing.T) { failover(t, w) })
	}
}

func failover(t *testing.T, w wayDown) {
	failoverOf(t, w, clusterConfig{bin: "node", role: role, n: 2}, nil)
}

// failoverOf runs the failover scenario on a cluster of cfg; check, when
// not nil, runs once both nodes are available, before the load.
func failoverOf(t *testing.T, w wayDown, cfg clusterConfig, check func(*cluster)) {
	c := startCluster(t, cfg)
	c.startAll()
	n1, n2 := c.nodes[0], c.nodes[1]
	c.waitAvailable(n1, n2)
	if check != nil {
		check(c)
	}
	l := c.load(loadCallers, loadPace)
	var tl timeline
	tl.mark("both up")
	l.waitCalls(t, 100)

	tl.mark("node-1 down")
	down1 := w.down(n1)
	c.waitAvailable(n2)
	steady1 := time.Now()
	l.waitCalls(t, 200)
	steady1End := time.Now()

	tl.mark("node-1 back")
	w.up(n1)
	c.waitAvailable(n1, n2)
	l.waitCalls(t, 100)

	tl.mark("node-2 down")
	down2 := w.down(n2)
	c.waitAvailable(n1)
	steady2 := time.Now()
	l.waitCalls(t, 200)
	steady2End := time.Now()

	tl.mark("both down")
	down3 := w.down(n1)
	c.waitAvailable()
	steady3 := time.Now()
	l.waitCalls(t, 200)
	steady3End := time.Now()

	back := w.up(n1)
	if b := w.up(n2); b.After(back) {
		back = b
	}
	tl.markAt("both back", back)
	first := l.waitSuccess(t, back)
	c.waitAvailable(n1, n2)
	l.waitCalls(t, 200)
	_, _ = l.stop()
	all := l.snapshot()

	tl.report(t, c, "failover with "+w.name, all)
	t.Logf("%s: left the available set after the fault: node-1 %s, node-2 %s, the last node %s; "+
		"first success %s after both were back (Healthy again, or thawed)", w.name,
		round(c.left(n1, down1)), round(c.left(n2, down2)), round(c.left(n1, down3)), round(first.Sub(back)))

	// One node down: every call succeeds, through the other node once the
	// manager knows; with SIGSTOP the calls in flight on the frozen node
	// may fail. A call still in flight on node 1 when it went down last
	// is that fault's, not the "node-2 down" phase's it started in a
	// moment before: with no node left to retry on, it fails (SIGKILL:
	// its connection is reset once the process is gone) or hangs
	// (SIGSTOP).
	lastCut := func(o outcome) bool { return inFlightOn(o, n1.addr, down3) }
	if cut := keep(all, lastCut); len(cut) > 0 {
		t.Logf("%d calls in flight on node-1 when it went down last (%d failed): left to that fault",
			len(cut), len(failures(cut)))
	}
	notCut := func(o outcome) bool { return !lastCut(o) }
	allowed := 0
	if w.inFlightMayFail {
		allowed = loadCallers
	}
	for _, p := range []string{"both up", "node-1 down", "node-1 back", "node-2 down"} {
		if !assertFailedAtMost(t, c, keep(tl.phase(all, p), notCut), allowed, p) {
			return
		}
	}
	require.Equal(t, []string{n2.name}, answeredBy(c, between(all, steady1, steady1End)), "node 1 down: calls via node 2")
	require.Empty(t, failures(between(all, steady1, steady1End)), "node 1 down, after convergence")
	steady2Calls := keep(between(all, steady2, steady2End), notCut)
	require.Equal(t, []string{n1.name}, answeredBy(c, steady2Calls), "node 2 down: calls via node 1")
	require.Empty(t, failures(steady2Calls), "node 2 down, after convergence")

	// Both down: once the manager knows, each call fails at once.
	gone := between(all, steady3, steady3End)
	require.NotEmpty(t, gone)
	for _, o := range gone {
		require.ErrorIs(t, o.err, clientmanager.ErrServiceUnavailable)
		var ne *clientmanager.NodeError
		require.True(t, errors.As(o.err, &ne), "a *NodeError: %v", o.err)
		require.Equal(t, 0, o.attempts, "no attempt is made")
	}
	f := summarise(c, gone)
	t.Logf("both down: %d calls failed fast, p50 %s, p99 %s, max %s", f.calls, round(f.p50), round(f.p99), round(f.max))
	require.Less(t, f.p99, 100*time.Millisecond, "fast fail p99")

	// Both back: calls succeed within a second or so (3 s on a loaded
	// machine), and none fails once one has succeeded.
	require.Less(t, first.Sub(back), 3*time.Second, "first success after both came back")
	var after []outcome
	for _, o := range tl.phase(all, "both back") {
		if o.start.After(first) {
			after = append(after, o)
		}
	}
	assertFailedAtMost(t, c, after, 0, "both back, after the first success")
}

// assertFailedAtMost checks that at most n of calls failed, and logs
// them when more did.
func assertFailedAtMost(t *testing.T, c *cluster, calls []outcome, n int, what string) bool {
	t.Helper()
	if f := failures(calls); len(f) > n {
		logFailures(t, c, calls, 10)
		t.Errorf("%s: %d of %d calls failed, want at most %d", what, len(f), len(calls), n)
		return false
	}
	return true
}

// inFlightOn reports whether o was in flight at at with its last attempt
// on the node at addr: a call that node's going down at at cut short.
func inFlightOn(o outcome, addr string, at time.Time) bool {
	return o.addr == addr && o.start.Before(at) && o.at.After(at)
}

// keep returns the calls for which f is true.
func keep(calls []outcome, f func(outcome) bool) []outcome {
	var out []outcome
	for _, o := range calls {
		if f(o) {
			out = append(out, o)
		}
	}
	return out
}

// answeredBy returns the names of the nodes that answered calls, sorted.
func answeredBy(c *cluster, calls []outcome) []string {
	seen := make(map[string]bool)
	var out []string
	for _, o := range calls {
		if o.err != nil {
			continue
		}
		if n := c.nameOf(o.addr); !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
