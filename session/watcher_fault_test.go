package session

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

// The watcher's client reaches etcd through a fault proxy. While it is cut
// off, sessions come and go and the history is compacted; the watcher
// keeps its last known set, and once the proxy is restored it re-lists and
// emits what it missed.
func TestWatcherResyncsAfterCompactionWhileCutOff(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoint())
	wcli := etcdtest.NewClient(t, proxy.Addr())
	cfg := testConfig(t)
	cfg.RequestTimeout = 500 * time.Millisecond
	const role = "querynode"
	metrics, err := NewMetrics(nil)
	require.NoError(t, err)
	core, logs := observer.New(zap.InfoLevel)

	for _, id := range []int64{1, 2} {
		putSession(t, m.Client, cfg, rec(role, id))
	}
	wc := fastWatchConfig(role)
	wc.ProgressInterval = 100 * time.Millisecond
	w := newWatcher(t, wcli, cfg, wc, WithMetrics(metrics), WithLogger(zap.New(core)))
	waitSynced(t, w)
	ch := w.Subscribe(context.Background())
	v := newView(t)
	v.apply(next(t, ch))
	v.apply(next(t, ch))

	proxy.Cut(t)
	cutAt := w.LastSync()
	putSession(t, m.Client, cfg, rec(role, 3))
	del(t, m.Client, cfg.Key(role, 1))
	s2 := rec(role, 2)
	s2.Stopping = true
	putSession(t, m.Client, cfg, s2)
	etcdtest.Compact(t, m.Client, etcdtest.CurrentRevision(t, m.Client))

	// Cut off: no mass Del, the set stays, and its age shows.
	require.Eventually(t, func() bool { return total(t, metrics.Resyncs) > 0 }, waitFor, 20*time.Millisecond,
		"a silent watch in front of a moving store is stale")
	require.Equal(t, []int64{1, 2}, ids(w.Sessions()))
	require.False(t, w.LastSync().After(cutAt.Add(cfg.RequestTimeout)), "LastSync does not move while cut off")
	require.Eventually(t, func() bool {
		return logs.FilterMessage("session list failed, keeping the last known set; retrying with backoff").Len() > 0
	}, waitFor, 20*time.Millisecond)
	require.Never(t, func() bool { return len(ch) > 0 || len(w.Sessions()) != 2 }, 1500*time.Millisecond, 20*time.Millisecond,
		"failed lists keep the last known set")

	proxy.Restore(t)
	requireConverges(t, w, m.Client, cfg, role)
	require.Equal(t, []int64{2, 3}, ids(w.Sessions()))
	for len(v.seen) != 2 || v.seen[3].ServerID != 3 || !v.seen[2].Stopping {
		v.apply(next(t, ch))
	}
	require.NotContains(t, v.seen, int64(1), "the missed Del was emitted")
	require.True(t, w.LastSync().After(cutAt))
	// Logs: one per state change, not one per failed attempt.
	relists := logs.FilterMessage("session watch broken, re-listing").Len()
	require.LessOrEqual(t, logs.FilterMessage("session list failed, keeping the last known set; retrying with backoff").Len(), relists)
	retried := logs.FilterMessage("session watch resynced").Filter(func(e observer.LoggedEntry) bool {
		return e.ContextMap()["failed_attempts"].(int64) > 1
	})
	require.Positive(t, retried.Len(), "a resync that needed several attempts")
}

// A compaction seen by a connected watcher breaks its watch with
// ErrCompacted; the watcher re-lists and goes on.
func TestWatcherResyncsOnCompactedWatch(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoint())
	wcli := etcdtest.NewClient(t, proxy.Addr())
	cfg := testConfig(t)
	const role = "datanode"
	metrics, err := NewMetrics(nil)
	require.NoError(t, err)
	wc := fastWatchConfig(role)
	wc.ProgressInterval = 0 // rely on etcd's own signal
	w := newWatcher(t, wcli, cfg, wc, WithMetrics(metrics))
	waitSynced(t, w)
	ch := w.Subscribe(context.Background())

	// The watch's connection is reset and re-established by the client,
	// which resumes from a revision that is compacted meanwhile.
	proxy.Down(t)
	putSession(t, m.Client, cfg, rec(role, 8))
	putSession(t, m.Client, cfg, rec(role, 9))
	del(t, m.Client, cfg.Key(role, 8))
	etcdtest.Compact(t, m.Client, etcdtest.CurrentRevision(t, m.Client))
	proxy.Restore(t)

	ev := next(t, ch)
	require.Equal(t, EventAdd, ev.Type)
	require.Equal(t, int64(9), ev.Session.ServerID)
	require.Eventually(t, func() bool { return value(t, metrics.Resyncs.WithLabelValues(role, reasonCompacted)) == 1 },
		waitFor, 10*time.Millisecond)
	requireConverges(t, w, m.Client, cfg, role)
}
