package etcdtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/embedetcd"
)

// Cluster is an n-member embedded etcd cluster.
type Cluster struct {
	// Client is connected to every member; closed by t.Cleanup.
	Client  *clientv3.Client
	Members []*Member
}

// StartCluster runs an n-member cluster and returns it once every member
// serves.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	cfgs := make([]embedetcd.Config, n)
	for i := range cfgs {
		cfgs[i] = memberConfig(t, fmt.Sprintf("m%d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTestTimeout)
	defer cancel()
	es, err := embedetcd.StartCluster(ctx, cfgs)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	c := &Cluster{}
	for _, e := range es {
		m := &Member{}
		m.started(t, e)
		c.Members = append(c.Members, m)
	}
	c.Client = NewClient(t, c.Endpoints()...)
	for _, m := range c.Members {
		m.Client = NewClient(t, m.Endpoint())
	}
	return c
}

// Endpoints returns every member's client address.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.Endpoint()
	}
	return eps
}

// StopMember stops member i; its data stays for RestartMember.
func (c *Cluster) StopMember(t testing.TB, i int) { t.Helper(); c.Members[i].Stop(t) }

// RestartMember starts member i again. When a quorum is running after it,
// it waits until every running member serves; after a full outage the
// members that restart before a quorum does are waited for by the one that
// completes it.
func (c *Cluster) RestartMember(t testing.TB, i int) {
	t.Helper()
	m := c.Members[i]
	if m.etcd != nil {
		t.Fatalf("etcdtest: member %s is running", m.cfg.Name)
	}
	m.start(t)
	var running []*Member
	for _, m := range c.Members {
		if m.etcd != nil {
			running = append(running, m)
		}
	}
	if len(running) > len(c.Members)/2 {
		waitReady(t, running...)
	}
}

// WaitLeader waits until the running members agree on a leader and
// returns its index.
func (c *Cluster) WaitLeader(t testing.TB) int {
	t.Helper()
	deadline := time.Now().Add(DefaultTestTimeout)
	for time.Now().Before(deadline) {
		if i := c.leader(); i >= 0 {
			return i
		}
		time.Sleep(20 * time.Millisecond) // polling an external system, not synchronising tests
	}
	t.Fatalf("etcdtest: no leader within %s", DefaultTestTimeout)
	return -1
}

// Leader returns the index of the current leader, waiting for one.
func (c *Cluster) Leader(t testing.TB) int { t.Helper(); return c.WaitLeader(t) }

func (c *Cluster) leader() int {
	for i, m := range c.Members {
		if m.etcd != nil && m.etcd.IsLeader() {
			return i
		}
	}
	return -1
}

// Compact compacts the keyspace at rev, physically.
func Compact(t testing.TB, cli *clientv3.Client, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTestTimeout)
	defer cancel()
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("etcdtest: compact at %d: %v", rev, err)
	}
}

// CurrentRevision returns the store's current revision.
func CurrentRevision(t testing.TB, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTestTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, "etcdtest/revision-probe")
	if err != nil {
		t.Fatalf("etcdtest: get revision: %v", err)
	}
	return resp.Header.Revision
}
