package session

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

// waitFor bounds every wait of the discovery tests.
const waitFor = etcdtest.DefaultTestTimeout

// rec returns a valid record of role with ServerID id.
func rec(role string, id int64) Session {
	return Session{ServerID: id, ServerName: role, Address: fmt.Sprintf("10.0.0.%d:19530", id),
		Version: "2.4.1", LeaseID: 100 + id, HostName: "host"}
}

func mustEncode(t testing.TB, s Session) []byte {
	t.Helper()
	b, err := s.Encode()
	require.NoError(t, err)
	return b
}

// testConfig is a valid Config under a root of the test's own.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.RootPath = "test/" + t.Name()
	cfg.RequestTimeout = 2 * time.Second
	return cfg
}

// fastWatchConfig paces resyncs and progress checks for tests.
func fastWatchConfig(role string) WatchConfig {
	wc := DefaultWatchConfig(role)
	wc.ResyncBackoff.Initial = 20 * time.Millisecond
	wc.ResyncBackoff.Max = 200 * time.Millisecond
	return wc
}

func put(t testing.TB, cli *clientv3.Client, key string, val []byte, opts ...clientv3.OpOption) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp, err := cli.Put(ctx, key, string(val), opts...)
	require.NoError(t, err)
	return resp.Header.Revision
}

func del(t testing.TB, cli *clientv3.Client, key string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp, err := cli.Delete(ctx, key)
	require.NoError(t, err)
	return resp.Header.Revision
}

// putSession writes s under its own key <role>-<ServerID>.
func putSession(t testing.TB, cli *clientv3.Client, cfg Config, s Session, opts ...clientv3.OpOption) int64 {
	t.Helper()
	return put(t, cli, cfg.Key(s.ServerName, s.ServerID), mustEncode(t, s), opts...)
}

func newWatcher(t testing.TB, cli *clientv3.Client, cfg Config, wc WatchConfig, opts ...Option) *Watcher {
	t.Helper()
	w, err := NewWatcher(cli, cfg, wc, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func waitSynced(t testing.TB, w *Watcher) {
	t.Helper()
	select {
	case <-w.Synced():
	case <-time.After(waitFor):
		t.Fatal("watcher not synced")
	}
}

// next returns the next event of ch, failing after waitFor.
func next(t testing.TB, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "subscription closed")
		return ev
	case <-time.After(waitFor):
		t.Fatal("no event")
	}
	return Event{}
}

// view folds events into the set a subscriber sees, checking that every
// Add is of an unseen process, every Update and Del of a seen one, and
// that revisions never decrease along the channel.
type view struct {
	t    testing.TB
	seen map[int64]Session
	rev  map[int64]int64
	last int64
}

func newView(t testing.TB) *view {
	return &view{t: t, seen: make(map[int64]Session), rev: make(map[int64]int64)}
}

func (v *view) apply(ev Event) {
	v.t.Helper()
	id := ev.Session.ServerID
	_, seen := v.seen[id]
	switch ev.Type {
	case EventAdd:
		require.False(v.t, seen, "Add of a seen process %d", id)
		v.seen[id] = ev.Session
	case EventUpdate:
		require.True(v.t, seen, "Update of an unseen process %d", id)
		v.seen[id] = ev.Session
	case EventDel:
		require.True(v.t, seen, "Del of an unseen process %d", id)
		delete(v.seen, id)
	default:
		v.t.Fatalf("unknown event type %v", ev.Type)
	}
	require.GreaterOrEqual(v.t, ev.Revision, v.last, "revision went back at %d", id)
	v.rev[id], v.last = ev.Revision, ev.Revision
}

// ids returns the ServerIDs of sessions, in order.
func ids(ss []Session) []int64 {
	out := make([]int64, len(ss))
	for i, s := range ss {
		out[i] = s.ServerID
	}
	return out
}

// requireConverges asserts that the watcher comes to show what List reads.
func requireConverges(t testing.TB, w *Watcher, cli *clientv3.Client, cfg Config, role string) {
	t.Helper()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout)
		defer cancel()
		want, _, err := List(ctx, cli, cfg, role)
		if err != nil {
			return false
		}
		got := w.Sessions()
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if !sameRecord(got[i], want[i]) {
				return false
			}
		}
		return true
	}, waitFor, 20*time.Millisecond, "watcher did not converge to List")
}

// value reads a counter's or gauge's value.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, m.Write(&d))
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// total sums the counters of a vector, every label combination.
func total(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		sum += value(t, m)
	}
	return sum
}
