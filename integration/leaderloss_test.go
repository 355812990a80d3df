//go:build integration

package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
)

// TestProcEtcdLeaderLoss takes the leader of a 3-member etcd cluster down
// while the manager calls three node processes, each of which reaches
// every member: no call fails, no session key is deleted, no node leaves
// the available set or its state. With ETCD=system the members are
// processes of Debian's etcd and the leader is killed (SIGKILL); embedded,
// the leader member is closed (it hands its leadership over first).
func TestProcEtcdLeaderLoss(t *testing.T) {
	c := startCluster(t, clusterConfig{bin: "node", role: role, n: 3, members: 3})
	c.startAll()
	c.waitAvailable(c.nodes...)
	before := c.sessions()
	require.Len(t, before, 3)
	dels := watchDeletes(t, c.cli, c.scfg.Prefix())
	l := c.load(loadCallers, loadPace)
	var tl timeline
	tl.mark("3 members")
	l.waitCalls(t, 100)

	leader := c.ecl.WaitLeader(t)
	down := tl.mark("leader down")
	c.ecl.StopMember(t, leader)
	stopped := time.Since(down)
	next := c.ecl.WaitLeader(t)
	elected := time.Since(down)
	// Longer than the TTL, so that a lease the new leader did not extend
	// would have expired.
	require.Never(t, func() bool { return !c.availableNow(c.nodes...) }, procTTL*3/2, 20*time.Millisecond,
		"a node left the available set")
	restarted := tl.mark("member restarted")
	c.ecl.RestartMember(t, leader)
	c.ecl.WaitLeader(t)
	rejoined := time.Since(restarted)
	l.waitCalls(t, 200)
	_, failed := l.stop()
	all := l.snapshot()
	after := c.sessions()
	deleted := dels.stop()

	tl.report(t, c, "etcd leader loss, 3 members", all)
	t.Logf("etcd (%T): leader m%d down (the stop took %s), m%d leader %s after the stop began; m%d back and the cluster agreed on a leader %s after its restart; "+
		"%d session keys deleted", c.ecl, leader, round(stopped), next, round(elected), leader, round(rejoined), deleted)
	require.Zero(t, deleted, "session keys deleted")
	for id, s := range before {
		require.Equal(t, s.LeaseID, after[id].LeaseID, "node %d keeps its lease", id)
	}
	for _, n := range c.nodes {
		_, changed := n.p.Find("state ")
		require.False(t, changed, "%s changed state", n.name)
		require.Zero(t, c.events.count(clientmanager.ClientOffline, n.addr, down), "%s went offline", n.name)
	}
	if len(failed) > 0 {
		logFailures(t, c, all, 10)
	}
	require.Empty(t, failed, "failed calls")
}
