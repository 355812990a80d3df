package etcdtest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestStartServesAndCompacts(t *testing.T) {
	m := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTestTimeout)
	defer cancel()
	for i := 0; i < 3; i++ {
		_, err := m.Client.Put(ctx, "k", "v")
		require.NoError(t, err)
	}
	rev := CurrentRevision(t, m.Client)
	require.GreaterOrEqual(t, rev, int64(4))
	Compact(t, m.Client, rev)
	_, err := m.Client.Get(ctx, "k", clientOpRev(rev-1)...)
	require.Error(t, err, "reading below the compacted revision fails")

	m.Stop(t)
	require.False(t, m.Running())
	m.Restart(t)
	resp, err := m.Client.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(resp.Kvs[0].Value), "data survives a restart")
}

func TestProxyFaults(t *testing.T) {
	m := Start(t)
	p := NewProxy(t, m.Endpoint())
	cli := NewClient(t, p.Addr())
	ok := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := cli.Put(ctx, "k", "v")
		return err
	}
	require.NoError(t, ok())

	p.Cut(t)
	require.Error(t, ok(), "a cut proxy passes nothing")
	p.Restore(t)
	require.Eventually(t, func() bool { return ok() == nil }, DefaultTestTimeout, 50*time.Millisecond)

	p.Down(t)
	require.Error(t, ok(), "a downed proxy refuses")
	p.Restore(t)
	require.Eventually(t, func() bool { return ok() == nil }, DefaultTestTimeout, 50*time.Millisecond)

	p.Latency(t, 700*time.Millisecond)
	require.Error(t, ok(), "latency above the deadline times the request out")
	p.Restore(t)
	require.Eventually(t, func() bool { return ok() == nil }, DefaultTestTimeout, 50*time.Millisecond)
}

func TestClusterLeaderChangeAndRestart(t *testing.T) {
	c := StartCluster(t, 3)
	leader := c.Leader(t)
	c.StopMember(t, leader)
	next := c.WaitLeader(t)
	require.NotEqual(t, leader, next)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTestTimeout)
	defer cancel()
	_, err := c.Client.Put(ctx, "k", "v")
	require.NoError(t, err, "two of three members keep serving")
	c.RestartMember(t, leader)
	resp, err := c.Members[leader].Client.Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "the restarted member caught up")
}

func clientOpRev(rev int64) []clientv3.OpOption { return []clientv3.OpOption{clientv3.WithRev(rev)} }
