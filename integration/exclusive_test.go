//go:build integration

package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProcExclusiveTakeover runs three coordinator processes of an
// exclusive role, one active and two standbys, while the test's manager
// calls the role. kill -9 of the active one: a standby takes over once
// the lease expires (about the TTL) and serves the calls; SIGTERM of the
// new active one: the last standby takes over at once. Only the active
// process answers, and never two at once.
//
// The manager starts once the three have registered, so the takeover
// figures do not depend on the known registration race
// (TestProcRegistrationRace): a manager started before could hold a
// coordinator that registers after it as gone, and the role would never
// be available.
func TestProcExclusiveTakeover(t *testing.T) {
	const coord = "rootcoord"
	c := startCluster(t, clusterConfig{bin: "coordinator", role: coord, n: 3, lateManager: true})
	c.startAll("Healthy", "StandBy", "StandBy")
	c.startManager()
	a := c.nodes[0]
	c.waitAvailable(a) // the standbys are connected but not serving
	l := c.load(loadCallers, loadPace)
	var tl timeline
	tl.mark("a active")
	l.waitCalls(t, 100)

	tl.mark("kill -9 a")
	killed := a.kill()
	b, bActive := firstHealthy(t, c.nodes[1], c.nodes[2])
	other := c.nodes[1]
	if b == other {
		other = c.nodes[2]
	}
	firstB := l.waitSuccess(t, bActive)
	tl.markAt(b.name+" active", bActive)
	c.waitAvailable(b)
	l.waitCalls(t, 100)

	tl.mark("SIGTERM " + b.name)
	terminated := b.p.Stop()
	cActive := other.expectState("Healthy").At
	bLeft := b.expectState("Stopping")
	require.NoError(t, b.p.WaitExit(procWait), "%s exits cleanly after SIGTERM", b.name)
	firstC := l.waitSuccess(t, cActive)
	tl.markAt(other.name+" active", cActive)
	c.waitAvailable(other)
	l.waitCalls(t, 100)
	_, _ = l.stop()
	all := l.snapshot()

	tl.report(t, c, "exclusive takeover", all)
	killGap := summarise(c, between(all, killed, firstB))
	termGap := summarise(c, between(all, terminated, firstC))
	t.Logf("kill -9: %s Healthy %s after the kill (TTL %s), first call answered by it %s after the kill; "+
		"%d calls in between, %d failed (%d unavailable)", b.name,
		round(bActive.Sub(killed)), procTTL, round(firstB.Sub(killed)), killGap.calls, killGap.failed, killGap.unavailable)
	t.Logf("SIGTERM: %s Healthy %s after the signal, first call answered by it %s after the signal; "+
		"%d calls in between, %d failed (%d unavailable)", other.name,
		round(cActive.Sub(terminated)), round(firstC.Sub(terminated)), termGap.calls, termGap.failed, termGap.unavailable)

	// A standby takes over within the TTL and a margin after a kill, and
	// at once (within a second or so) after a graceful stop, only once the
	// active one left Healthy.
	require.Less(t, bActive.Sub(killed), procTTL+2*time.Second, "takeover after kill -9")
	require.Less(t, cActive.Sub(terminated), 3*time.Second, "takeover after SIGTERM")
	require.False(t, cActive.Before(bLeft.At), "the standby is active only once the active one left Healthy")
	require.True(t, cActive.After(terminated), "%s stood by while %s was active", other.name, b.name)
	// Only the active process answers.
	require.Equal(t, []string{a.name}, answeredBy(c, tl.phase(all, "a active")))
	require.Equal(t, []string{b.name}, answeredBy(c, between(all, firstB, terminated)))
	require.Equal(t, []string{other.name}, answeredBy(c, between(all, firstC, time.Time{})))
	// No call fails while an active process is known, but those in
	// flight on it when it is killed (at most one per caller: an exclusive
	// role has no other replica to retry on).
	var done, inFlight []outcome
	for _, o := range tl.phase(all, "a active") {
		if o.at.Before(killed) {
			done = append(done, o)
		} else {
			inFlight = append(inFlight, o)
		}
	}
	assertFailedAtMost(t, c, done, 0, "a active")
	assertFailedAtMost(t, c, inFlight, loadCallers, "in flight on a when killed")
	assertFailedAtMost(t, c, between(all, firstB.Add(time.Millisecond), terminated), 0, "after "+b.name+" took over")
	assertFailedAtMost(t, c, between(all, firstC.Add(time.Millisecond), time.Time{}), 0, "after "+other.name+" took over")
}

// firstHealthy waits until one of ns prints its move to Healthy and
// returns it with that line's time; the others must not move meanwhile.
func firstHealthy(t *testing.T, ns ...*procNode) (*procNode, time.Time) {
	t.Helper()
	var won *procNode
	var at time.Time
	require.Eventually(t, func() bool {
		for _, n := range ns {
			if l, ok := n.p.Find("state Healthy "); ok {
				won, at = n, l.At
				return true
			}
		}
		return false
	}, procWait, 5*time.Millisecond, "a standby takes over")
	won.expectState("Healthy") // consume it
	return won, at
}
