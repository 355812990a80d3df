package etcdtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
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
	c := &Cluster{}
	for i := 0; i < n; i++ {
		c.Members = append(c.Members, newMember(t, fmt.Sprintf("m%d", i)))
	}
	ic := joinCluster(c.Members)
	var wg sync.WaitGroup
	for _, m := range c.Members {
		m.initialCluster = ic
	}
	// Members block on each other while they bootstrap: start them together.
	errs := make(chan string, n)
	for _, m := range c.Members {
		wg.Add(1)
		go func(m *Member) {
			defer wg.Done()
			r := &recorder{TB: t}
			m.start(r)
			if r.msg != "" {
				errs <- r.msg
			}
		}(m)
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
	waitReady(t, c.Members...)
	c.Client = NewClient(t, c.Endpoints()...)
	for _, m := range c.Members {
		m.Client = NewClient(t, m.Endpoint())
	}
	return c
}

// recorder turns Fatalf from another goroutine into a message.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msg = fmt.Sprintf(format, args...)
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
		t.Fatalf("etcdtest: member %s is running", m.name)
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
		if m.etcd == nil {
			continue
		}
		select {
		case <-m.etcd.Server.ReadyNotify():
		default:
			continue
		}
		if m.etcd.Server.Leader() == m.etcd.Server.MemberID() {
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
