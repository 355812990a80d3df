//go:build integration

package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProcRollingRestart restarts the 5 node processes of a role one
// after the other (SIGTERM, then a new process on the same address, which
// must be available again before the next one stops) while calls go on:
// not one call fails.
func TestProcRollingRestart(t *testing.T) {
	c := startCluster(t, clusterConfig{bin: "node", role: role, n: 5})
	c.startAll()
	c.waitAvailable(c.nodes...)
	l := c.load(loadCallers, loadPace)
	var tl timeline
	tl.mark("all up")
	l.waitCalls(t, 100)

	type figures struct{ left, stopped, healthy, joined time.Duration }
	var figs []figures
	for _, n := range c.nodes {
		tl.mark("restart " + n.name)
		sent := n.stop()
		stopped := time.Since(sent)
		restart(n)
		c.waitAvailable(c.nodes...)
		// n.healthy is that of the last process, should the first have been
		// restarted for the known registration race.
		// The new process can be online for the manager before this test
		// reads its "Healthy" line from the pipe: look for the online
		// event from the stop on, and measure it from Healthy (a negative
		// figure: online before the line was read).
		healthy := n.healthy.Sub(sent)
		figs = append(figs, figures{left: c.left(n, sent), stopped: stopped,
			healthy: healthy, joined: c.joined(n, sent) - healthy})
		l.waitCalls(t, 50)
	}
	tl.mark("all restarted")
	l.waitCalls(t, 100)
	_, failed := l.stop()
	all := l.snapshot()

	tl.report(t, c, "rolling restart of 5 nodes", all)
	for i, f := range figs {
		t.Logf("%s: left the available set %s after SIGTERM, exited after %s, new process Healthy after %s, available %s after that",
			c.nodes[i].name, round(f.left), round(f.stopped), round(f.healthy), round(f.joined))
	}
	if len(failed) > 0 {
		logFailures(t, c, all, 10)
	}
	require.Empty(t, failed, fmt.Sprintf("failed calls of %d", len(all)))
}
