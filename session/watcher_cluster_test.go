package session

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

// A 3-member cluster loses its leader, gets it back, then loses every
// member for longer than the short sessions' TTL (3 s) and shorter than
// the long sessions' (15 s). The watcher never emits a Del, and emits no Del at all while etcd is down (it keeps the last known
// set), and after the outage converges to what etcd holds: every session
// under its own lease, since a restarted etcd extends every lease and each
// registration resumes the lease it had.
func TestWatcherThroughClusterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster faults take about 15 s")
	}
	c := etcdtest.StartCluster(t, 3)
	// The watcher and the registrations reach each member through a proxy:
	// a member that goes down drops its client connections at once, as a
	// crashed process does (an embedded member's graceful stop would wait
	// for their streams).
	proxies := make([]*etcdtest.Proxy, len(c.Members))
	addrs := make([]string, len(c.Members))
	for i, m := range c.Members {
		proxies[i] = etcdtest.NewProxy(t, m.Endpoint())
		addrs[i] = proxies[i].Addr()
	}
	crash := func(i int) { proxies[i].Down(t); c.StopMember(t, i) }
	regCli := etcdtest.NewClient(t, addrs...)
	wcli := etcdtest.NewClient(t, addrs...)
	cfg := testConfig(t)
	cfg.RequestTimeout = time.Second
	cfg.ReregisterBackoff.Initial = 50 * time.Millisecond
	cfg.ReregisterBackoff.Max = 500 * time.Millisecond
	shortCfg := cfg
	shortCfg.TTL = 3 * time.Second
	const role = "querynode"

	var regs []*Registration
	closeRegs := func() {
		var wg sync.WaitGroup
		for _, r := range regs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_ = r.Close(ctx)
			}()
		}
		wg.Wait()
	}
	t.Cleanup(closeRegs)
	register := func(cfg Config, host int) Session {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		r, err := Register(ctx, regCli, Session{ServerName: role, Address: fmt.Sprintf("10.1.0.%d:21123", host)}, cfg)
		require.NoError(t, err)
		regs = append(regs, r)
		return r.Session()
	}
	long := map[int64]Session{}  // TTL 15 s
	short := map[int64]Session{} // TTL 3 s
	for i := range 2 {
		s := register(cfg, i+1)
		long[s.ServerID] = s
		s = register(shortCfg, i+11)
		short[s.ServerID] = s
	}

	wc := fastWatchConfig(role)
	wc.ProgressInterval = 200 * time.Millisecond
	w := newWatcher(t, wcli, cfg, wc)
	waitSynced(t, w)
	ch := w.Subscribe(context.Background())
	all := maps.Clone(long)
	maps.Copy(all, short)
	o := &delObserver{t: t, ch: ch, v: newView(t), keep: all}
	for len(o.v.seen) < 4 {
		o.v.apply(next(t, ch))
	}
	probe := func() { t.Helper(); waitCaughtUp(t, c.Client, w, cfg.Key(role+"probe", 1)) }

	t.Log("the leader stops")
	leader := c.Leader(t)
	crash(leader)
	c.WaitLeader(t)
	probe()
	o.watch(2*time.Second, false)

	t.Log("it comes back")
	c.RestartMember(t, leader)
	proxies[leader].Restore(t)
	probe()
	o.watch(500*time.Millisecond, false)

	t.Log("every member stops")
	for i := range c.Members {
		crash(i)
	}
	down := time.Now()
	before := w.Sessions()
	o.watch(shortCfg.TTL+500*time.Millisecond, true)
	require.Equal(t, ids(before), ids(w.Sessions()), "the last known set stays while etcd is down")
	require.True(t, w.LastSync().Before(down), "LastSync ages while etcd is down")

	t.Log("every member restarts")
	for i := range c.Members {
		c.RestartMember(t, i)
	}
	for _, p := range proxies {
		p.Restore(t)
	}
	c.WaitLeader(t)
	// A restarted etcd extends every lease: each registration resumes its
	// own lease (Disconnected, then Connected), the short ones included, so
	// the watcher sees no Del and no new lease.
	requireConverges(t, w, c.Client, cfg, role)
	o.watch(shortCfg.TTL, false)
	for id, s := range long {
		require.Equal(t, s.LeaseID, o.v.seen[id].LeaseID, "long session %d kept its lease", id)
	}
	for id, s := range short {
		require.Equal(t, s.LeaseID, o.v.seen[id].LeaseID, "short session %d kept its lease", id)
	}
	require.Len(t, o.v.seen, 4)

	// The members restarted above are stopped first by the cleanups, and a
	// member's stop waits for the client streams it serves: end them now.
	require.NoError(t, w.Close())
	closeRegs()
	for _, p := range proxies {
		p.Down(t)
	}
}

// delObserver reads a subscription and fails on a Del of a process in keep,
// or on any Del when etcd is down.
type delObserver struct {
	t    *testing.T
	ch   <-chan Event
	v    *view
	keep map[int64]Session
}

// watch applies the events that arrive within d.
func (o *delObserver) watch(d time.Duration, etcdDown bool) {
	o.t.Helper()
	window := time.NewTimer(d)
	defer window.Stop()
	for {
		select {
		case ev := <-o.ch:
			if ev.Type == EventDel {
				_, kept := o.keep[ev.Session.ServerID]
				require.False(o.t, kept, "spurious Del of a live session %s", ev.Session)
				require.False(o.t, etcdDown, "Del of %s while etcd is down", ev.Session)
			}
			o.v.apply(ev)
		case <-window.C:
			return
		}
	}
}

// waitCaughtUp writes key (of another role, under the watched prefix) and
// waits until the watcher has seen that revision.
func waitCaughtUp(t *testing.T, cli *clientv3.Client, w *Watcher, key string) {
	t.Helper()
	var rev int64
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := cli.Put(ctx, key, "probe")
		if err != nil {
			return false
		}
		rev = resp.Header.Revision
		return true
	}, waitFor, 50*time.Millisecond, "etcd does not accept writes")
	require.Eventually(t, func() bool { return w.Revision() >= rev }, waitFor, 10*time.Millisecond,
		"watcher did not reach revision %d", rev)
}
