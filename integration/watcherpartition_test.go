package integration

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// TestWatcherPartitionWithCompaction cuts a session watcher and a client
// manager off from etcd (a black hole on their etcd link; the nodes and
// the manager↔node links are untouched) while the manager calls five
// nodes. During the partition two nodes join, one leaves, one restarts
// under its ServerID (an update: new lease and Incarnation), one joins and
// leaves again, and etcd is compacted past both watchers' revision. After
// the heal both converge on etcd's truth with no missed and no phantom
// change:
//   - the watcher's set and the set its subscriber's events build from the
//     set before the cut equal etcd's sessions; the nodes that did not
//     change have no event, the one that left exactly one Del, the one
//     that restarted exactly one Update, each new one exactly one Add, the
//     one that came and went none;
//   - the manager's members and available nodes are etcd's sessions, each
//     under its current lease; the nodes that did not change never went
//     offline, and its events build the same set;
//   - no call failed.
func TestWatcherPartitionWithCompaction(t *testing.T) {
	const ttl = 2 * time.Second
	m := etcdtest.Start(t)
	eps := []string{m.Endpoint()}
	proxy := etcdtest.NewProxy(t, m.Endpoint())
	cfg := sessionConfig(ttl)
	var nodes []*node
	for range 5 {
		nodes = append(nodes, startNode(t, eps, session.Session{ServerName: role}, cfg))
	}
	core, wlogs := observer.New(zapcore.InfoLevel)
	w, err := session.NewWatcher(etcdtest.NewClient(t, proxy.Addr()), cfg, session.DefaultWatchConfig(role),
		session.WithLogger(zap.New(core)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	var d net.Dialer
	mgr, _ := newManagerOf(t, []string{proxy.Addr()}, cfg, role,
		func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) })
	waitOnline(t, mgr, 5)
	before := sessionsOf(t, m.Client, cfg)
	require.Len(t, before, 5)
	require.Eventually(t, func() bool { return sameSet(w.Sessions(), before) }, waitFor, 5*time.Millisecond,
		"the watcher synced")
	wev := recordWatcher(t, w)
	mev := recordClients(t, mgr)
	// The subscribers' snapshots: one Add, one Online per node.
	require.Eventually(t, func() bool { return wev.len() == 5 && mev.len() == 5 }, waitFor, 5*time.Millisecond)
	l := startLoad(mgr, 4, 5*time.Millisecond)
	t.Cleanup(func() { l.stop() })
	require.Eventually(t, func() bool { return l.count() > 100 }, waitFor, 10*time.Millisecond, "load runs")

	id := func(n *node) int64 { return n.r.Session().ServerID }
	a, b, c, dn, e := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
	wrev := w.Revision()
	cut := time.Now()
	proxy.Cut(t)
	joined := []*node{
		startNode(t, eps, session.Session{ServerName: role}, cfg),
		startNode(t, eps, session.Session{ServerName: role}, cfg),
	}
	require.NoError(t, b.stop())
	dID := id(dn)
	require.NoError(t, dn.stop())
	startNode(t, eps, session.Session{ServerName: role, ServerID: dID}, cfg)
	h := startNode(t, eps, session.Session{ServerName: role}, cfg)
	hID := id(h)
	require.NoError(t, h.stop())
	rev := etcdtest.CurrentRevision(t, m.Client)
	require.Less(t, w.Revision(), rev, "changes the watcher has not seen")
	etcdtest.Compact(t, m.Client, rev)
	// A partition longer than twice the TTL: the etcd clients' keepalive
	// gives up on the silent connection, and a watch resumed from the
	// watcher's revision meets the compaction.
	time.Sleep(time.Until(cut.Add(2 * ttl))) // the partition's length
	duringW, duringM := wev.since(cut), mev.since(cut)

	truth := sessionsOf(t, m.Client, cfg)
	wantIDs := []int64{id(a), id(c), dID, id(e), id(joined[0]), id(joined[1])}
	slices.Sort(wantIDs)
	require.Equal(t, wantIDs, slices.Sorted(maps.Keys(truth)), "etcd's truth")
	require.NotEqual(t, before[dID].LeaseID, truth[dID].LeaseID, "the restarted node has a new lease")
	heal := time.Now()
	proxy.Restore(t)
	var wAt, mAt time.Time
	require.Eventually(t, func() bool {
		now := time.Now()
		if wAt.IsZero() && sameSet(w.Sessions(), truth) && sameSet(wev.replay(before), truth) {
			wAt = now
		}
		if mAt.IsZero() && managerIs(mgr, truth) && sameIDs(mev.replay(before), truth) {
			mAt = now
		}
		return !wAt.IsZero() && !mAt.IsZero()
	}, waitFor, 5*time.Millisecond, "the watcher and the manager converge on etcd's truth")
	calls := l.count()
	require.Eventually(t, func() bool { return l.count() > calls+100 }, waitFor, 10*time.Millisecond, "calls go on")
	total, failed := l.stop()

	// The watcher re-listed: its watch could not resume past the compaction.
	var resyncs []string
	for _, e := range wlogs.FilterMessage("session watch resynced").All() {
		resyncs = append(resyncs, fmt.Sprint(e.ContextMap()["reason"]))
	}
	require.NotEmpty(t, resyncs, "the watcher resynced")
	// The watcher: exactly the changes, each once.
	wAfter := wev.since(cut)
	want := map[int64]string{id(a): "", id(c): "", id(e): "", id(b): "del", dID: "update",
		id(joined[0]): "add", id(joined[1]): "add", hID: ""}
	for sid, kinds := range want {
		require.Equal(t, kinds, wAfter.kinds(sid), "the watcher's events of node %d", sid)
	}
	require.Len(t, wAfter, 4, "the watcher's events after the cut: %s", wAfter)
	require.Equal(t, truth[dID].LeaseID, wAfter.last(dID).LeaseID, "the update carries the new lease")
	// The manager: nothing offline that stayed, the new process of the
	// restarted node online, nothing of the node that came and went.
	mAfter := mev.since(cut)
	for _, n := range []*node{a, c, e} {
		require.Empty(t, mAfter.kinds(id(n)), "the manager's events of node %d, which did not change", id(n))
	}
	require.Empty(t, mAfter.kinds(hID), "the manager's events of node %d, which came and went", hID)
	require.Equal(t, "offline", lastKind(mAfter.kinds(id(b))), "node %d left", id(b))
	require.Equal(t, truth[dID].LeaseID, mAfter.last(dID).LeaseID, "the manager has the new process of node %d", dID)
	if len(failed) > 0 {
		for _, o := range failed[:min(len(failed), 10)] {
			t.Logf("failed call started %s on node %d after %d attempts: %v", o.start.Format("15:04:05.000"), o.node, o.attempts, o.err)
		}
	}
	require.Empty(t, failed, "failed calls")
	t.Logf("partition of %s (TTL %s), etcd compacted at revision %d while the watchers were at %d; "+
		"events while cut off: watcher %d, manager %d (%s)\n"+
		"after the heal: watcher converged in %s (resyncs: %s), manager in %s; watcher events after the cut: %s; manager events: %s; "+
		"%d calls, %d failed",
		heal.Sub(cut).Round(time.Millisecond), ttl, rev, wrev, len(duringW), len(duringM), duringM,
		wAt.Sub(heal).Round(time.Millisecond), strings.Join(resyncs, ","), mAt.Sub(heal).Round(time.Millisecond), wAfter, mAfter, total, len(failed))
}

// sameSet reports whether ss are exactly the sessions of want, each the
// same process (lease and Incarnation) with the same Stopping.
func sameSet(ss []session.Session, want map[int64]session.Session) bool {
	if len(ss) != len(want) {
		return false
	}
	for _, s := range ss {
		w, ok := want[s.ServerID]
		if !ok || w.LeaseID != s.LeaseID || w.Incarnation != s.Incarnation || w.Stopping != s.Stopping || w.Address != s.Address {
			return false
		}
	}
	return true
}

// sameIDs reports whether ss are the processes of want, by ServerID and
// lease.
func sameIDs(ss []session.Session, want map[int64]session.Session) bool {
	if len(ss) != len(want) {
		return false
	}
	for _, s := range ss {
		if w, ok := want[s.ServerID]; !ok || w.LeaseID != s.LeaseID {
			return false
		}
	}
	return true
}

// managerIs reports whether the manager's members and its available
// nodes are both exactly the sessions of want, each under its lease.
func managerIs(m *clientmanager.Manager, want map[int64]session.Session) bool {
	var avail []session.Session
	for _, c := range m.GetClients(role) {
		avail = append(avail, c.Session())
	}
	if !sameIDs(avail, want) {
		return false
	}
	st := m.Status()
	if len(st) != len(want) {
		return false
	}
	for _, s := range st {
		if w, ok := want[s.NodeID]; !ok || w.LeaseID != s.LeaseID {
			return false
		}
	}
	return true
}

// seenEvent is one event a subscriber read: a session event's or a
// client event's kind and record, with the time it was read.
type seenEvent struct {
	at   time.Time
	kind string // add, update, del; online, offline
	s    session.Session
}

// eventLog keeps the events a subscriber read.
type eventLog struct {
	mu     sync.Mutex
	events []seenEvent
}

func (l *eventLog) add(e seenEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// since returns the events read at or after from.
func (l *eventLog) since(from time.Time) events {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out events
	for _, e := range l.events {
		if !e.at.Before(from) {
			out = append(out, e)
		}
	}
	return out
}

// replay applies every event read to base and returns the set it builds.
func (l *eventLog) replay(base map[int64]session.Session) []session.Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := maps.Clone(base)
	for _, e := range l.events {
		switch e.kind {
		case "add", "update", "online":
			set[e.s.ServerID] = e.s
		case "del", "offline":
			if cur, ok := set[e.s.ServerID]; ok && cur.LeaseID == e.s.LeaseID {
				delete(set, e.s.ServerID)
			}
		}
	}
	return slices.Collect(maps.Values(set))
}

// events is a list of events read.
type events []seenEvent

// kinds returns the kinds of the events of ServerID id, in order,
// joined with ",".
func (es events) kinds(id int64) string {
	var out []string
	for _, e := range es {
		if e.s.ServerID == id {
			out = append(out, e.kind)
		}
	}
	return strings.Join(out, ",")
}

// last returns the record of the last event of ServerID id.
func (es events) last(id int64) session.Session {
	var s session.Session
	for _, e := range es {
		if e.s.ServerID == id {
			s = e.s
		}
	}
	return s
}

func (es events) String() string {
	if len(es) == 0 {
		return "none"
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s %d", e.kind, e.s.ServerID)
	}
	return strings.Join(out, ", ")
}

func lastKind(kinds string) string {
	return kinds[strings.LastIndex(kinds, ",")+1:]
}

// recordWatcher subscribes to w and keeps every event until the test
// ends.
func recordWatcher(t *testing.T, w *session.Watcher) *eventLog {
	l := &eventLog{}
	ctx, cancel := context.WithCancel(context.Background())
	ch := w.Subscribe(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			l.add(seenEvent{at: time.Now(), kind: ev.Type.String(), s: ev.Session})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return l
}

// recordClients subscribes to the manager's client events of role and
// keeps every one until the test ends.
func recordClients(t *testing.T, m *clientmanager.Manager) *eventLog {
	l := &eventLog{}
	ctx, cancel := context.WithCancel(context.Background())
	ch := m.WatchClients(ctx, role)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			l.add(seenEvent{at: time.Now(), kind: ev.Type.String(), s: ev.Client.Session()})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return l
}
