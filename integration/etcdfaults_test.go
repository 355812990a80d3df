package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

// TestEtcdOutageIsNotACallOutage stops etcd for 2.5 × TTL while a client
// manager calls three nodes run by startup.Runner from 4 goroutines. No
// call fails during or after the outage, no node leaves the online set,
// every node stays Healthy, and after etcd returns every session is back
// within 2 s under the same lease and Incarnation, with no connection
// dialed again.
func TestEtcdOutageIsNotACallOutage(t *testing.T) {
	const ttl = 2 * time.Second
	m := etcdtest.Start(t)
	eps := []string{m.Endpoint()}
	cfg := sessionConfig(ttl)
	var nodes []*node
	for range 3 {
		nodes = append(nodes, startNode(t, eps, session.Session{ServerName: role}, cfg))
	}
	mgr, dials, logs := newManager(t, eps, cfg)
	waitOnline(t, mgr, 3)
	before := sessionsOf(t, m.Client, cfg)
	require.Len(t, before, 3)
	dialed := dials.Load()
	offline := watchOffline(mgr)
	l := startLoad(mgr, 4, 5*time.Millisecond)
	require.Eventually(t, func() bool { return l.count() > 100 }, waitFor, 10*time.Millisecond, "load runs")

	down := time.Now()
	m.Stop(t)
	outage := ttl * 5 / 2
	require.Never(t, func() bool {
		for _, n := range nodes {
			if n.r.State() != startup.StateHealthy {
				return true
			}
		}
		return len(mgr.GetClients(role)) != 3
	}, outage, 20*time.Millisecond, "a node left Healthy or the online set during the outage")
	duringOutage := l.count()
	m.Restart(t)
	up := time.Now()
	var back time.Duration
	require.Eventually(t, func() bool {
		now := sessionsOf(t, m.Client, cfg)
		if len(now) != 3 {
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
	for _, n := range nodes {
		require.Equal(t, startup.StateHealthy, n.r.State())
	}
	calls := l.count()
	require.Eventually(t, func() bool { return l.count() > calls+100 }, waitFor, 10*time.Millisecond, "calls go on")
	total, failed := l.stop()
	require.Empty(t, failed, "failed calls")
	require.Zero(t, offline.stop(), "ClientOffline events")
	require.Equal(t, dialed, dials.Load(), "connections dialed again")
	require.Zero(t, logs.FilterLevelExact(zapErrorLevel).Len(), "manager errors")
	t.Logf("etcd stopped for at least %s, %s from the stop call to the restart (TTL %s); %d calls, %d before etcd returned, 0 failed; sessions back %s after etcd; %d dials in all",
		outage, up.Sub(down).Round(time.Millisecond), ttl, total, duringOutage, back.Round(time.Millisecond), dials.Load())
}

// TestEtcdLeaderChangeIsInvisible stops the leader of a 3-member cluster
// while a client manager calls three nodes: no call fails and no session
// key is deleted.
func TestEtcdLeaderChangeIsInvisible(t *testing.T) {
	// A keepalive starved for a whole TTL on a loaded machine would be a
	// real expiry, not a spurious one: the TTL leaves room for that.
	const ttl = 4 * time.Second
	c := etcdtest.StartCluster(t, 3)
	eps := c.Endpoints()
	cfg := sessionConfig(ttl)
	for range 3 {
		startNode(t, eps, session.Session{ServerName: role}, cfg)
	}
	mgr, dials, _ := newManager(t, eps, cfg)
	waitOnline(t, mgr, 3)
	dialed := dials.Load()
	dels := watchDeletes(t, c.Client, cfg.Prefix())
	offline := watchOffline(mgr)
	l := startLoad(mgr, 4, 5*time.Millisecond)
	require.Eventually(t, func() bool { return l.count() > 100 }, waitFor, 10*time.Millisecond, "load runs")

	leader := c.Leader(t)
	c.StopMember(t, leader)
	c.WaitLeader(t)
	calls := l.count()
	// Longer than the TTL, so that a lease the new leader did not extend
	// would have expired.
	require.Never(t, func() bool { return len(mgr.GetClients(role)) != 3 }, ttl*3/2, 20*time.Millisecond,
		"a node left the online set")
	c.RestartMember(t, leader)
	c.WaitLeader(t)
	require.Eventually(t, func() bool { return l.count() > calls+100 }, waitFor, 10*time.Millisecond, "calls go on")
	total, failed := l.stop()
	require.Empty(t, failed, "failed calls")
	require.Zero(t, dels.stop(), "session keys deleted")
	require.Zero(t, offline.stop(), "ClientOffline events")
	require.Equal(t, dialed, dials.Load(), "connections dialed again")
	t.Logf("leader %d stopped and restarted; %d calls, 0 failed, 0 Del", leader, total)
}
