//go:build integration

package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
)

// TestProcEtcdOutage stops etcd for 2.5 × TTL while the manager calls
// three node processes: no call fails, no node leaves the available set,
// no node leaves Healthy, and once etcd is back every session is back
// within 2 s under the same lease and Incarnation. With ETCD=system it is
// Debian's etcd that stops.
func TestProcEtcdOutage(t *testing.T) {
	c := startCluster(t, clusterConfig{bin: "node", role: role, n: 3})
	c.startAll()
	c.waitAvailable(c.nodes...)
	before := c.sessions()
	require.Len(t, before, 3)
	l := c.load(loadCallers, loadPace)
	var tl timeline
	tl.mark("etcd up")
	l.waitCalls(t, 100)

	down := tl.mark("etcd down")
	c.etcd.Stop(t)
	outage := procTTL * 5 / 2
	require.Never(t, func() bool { return !c.availableNow(c.nodes...) }, outage, 20*time.Millisecond,
		"a node left the available set during the outage")
	c.etcd.Restart(t)
	up := tl.mark("etcd back")
	var back time.Duration
	require.Eventually(t, func() bool {
		now := c.sessions()
		if len(now) != len(before) {
			return false
		}
		for id, s := range before {
			if now[id].Incarnation != s.Incarnation || now[id].LeaseID != s.LeaseID {
				return false
			}
		}
		back = time.Since(up)
		return true
	}, 2*time.Second, 10*time.Millisecond, "every session back within 2 s, same lease and Incarnation")
	l.waitCalls(t, 200)
	_, failed := l.stop()
	all := l.snapshot()

	tl.report(t, c, "etcd outage of 2.5 × TTL", all)
	t.Logf("etcd (%T) down for %s (TTL %s); sessions back %s after it returned", c.etcd, round(up.Sub(down)), procTTL, round(back))
	for _, n := range c.nodes {
		_, left := n.p.Find("state ")
		require.False(t, left, "%s changed state", n.name)
		require.Zero(t, c.events.count(clientmanager.ClientOffline, n.addr, down), "%s went offline", n.name)
		require.Zero(t, c.events.count(clientmanager.ClientOnline, n.addr, down), "%s came online again", n.name)
	}
	if len(failed) > 0 {
		logFailures(t, c, all, 10)
	}
	require.Empty(t, failed, "failed calls")
}

// availableNow reports whether the available nodes are exactly ns, as
// the manager says (without asking etcd, which may be down).
func (c *cluster) availableNow(ns ...*procNode) bool {
	return slices.Equal(c.available(), addrs(ns))
}

// sessions lists the role's sessions in etcd by ServerID; nil when etcd
// does not answer.
func (c *cluster) sessions() map[int64]session.Session {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ss, _, err := session.List(ctx, c.cli, c.scfg, c.cfg.role)
	if err != nil {
		return nil
	}
	out := make(map[int64]session.Session, len(ss))
	for _, s := range ss {
		out[s.ServerID] = s
	}
	return out
}
