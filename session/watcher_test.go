package session

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/retry"
)

func TestNewWatcherValidates(t *testing.T) {
	m := etcdtest.Start(t)
	good := DefaultWatchConfig("querynode")
	badCfg := DefaultConfig()
	badCfg.RootPath = ""
	tests := []struct {
		name string
		cli  *clientv3.Client
		cfg  Config
		wc   func(*WatchConfig)
		want string
	}{
		{name: "nil client", cfg: DefaultConfig(), want: "cli"},
		{name: "config", cli: m.Client, cfg: badCfg, want: "RootPath"},
		{name: "empty role", cli: m.Client, cfg: DefaultConfig(), wc: func(c *WatchConfig) { c.Role = "" }, want: "Role"},
		{name: "role with slash", cli: m.Client, cfg: DefaultConfig(), wc: func(c *WatchConfig) { c.Role = "a/b" }, want: "Role"},
		{name: "version range", cli: m.Client, cfg: DefaultConfig(), wc: func(c *WatchConfig) { c.VersionRange = ">= banana" }, want: "VersionRange"},
		{name: "buffer", cli: m.Client, cfg: DefaultConfig(), wc: func(c *WatchConfig) { c.SubscriberBuffer = -1 }, want: "SubscriberBuffer"},
		{name: "progress", cli: m.Client, cfg: DefaultConfig(), wc: func(c *WatchConfig) { c.ProgressInterval = -time.Second }, want: "ProgressInterval"},
		{name: "backoff", cli: m.Client, cfg: DefaultConfig(), wc: func(c *WatchConfig) { c.ResyncBackoff = retry.Backoff{} }, want: "ResyncBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wc := good
			if tt.wc != nil {
				tt.wc(&wc)
			}
			w, err := NewWatcher(tt.cli, tt.cfg, wc)
			require.Error(t, err)
			require.Nil(t, w)
			require.Contains(t, err.Error(), tt.want)
		})
	}
	require.NoError(t, good.Validate())
}

func TestEventTypeString(t *testing.T) {
	require.Equal(t, "add", EventAdd.String())
	require.Equal(t, "update", EventUpdate.String())
	require.Equal(t, "del", EventDel.String())
	require.Equal(t, "EventType(9)", EventType(9).String())
}

func TestWatcherAddUpdateDel(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "querynode"
	metrics, err := NewMetrics(nil)
	require.NoError(t, err)
	w := newWatcher(t, m.Client, cfg, fastWatchConfig(role), WithMetrics(metrics))
	waitSynced(t, w)
	ch := w.Subscribe(context.Background())

	s := rec(role, 7)
	r1 := putSession(t, m.Client, cfg, s)
	ev := next(t, ch)
	require.Equal(t, EventAdd, ev.Type)
	require.True(t, sameRecord(s, ev.Session))
	require.Equal(t, r1, ev.Revision)

	s.Stopping = true
	r2 := putSession(t, m.Client, cfg, s)
	ev = next(t, ch)
	require.Equal(t, EventUpdate, ev.Type)
	require.True(t, ev.Session.Stopping)
	require.Equal(t, r2, ev.Revision)

	s.Stopping, s.LeaseID = false, 4242 // a new incarnation
	r3 := putSession(t, m.Client, cfg, s)
	ev = next(t, ch)
	require.Equal(t, EventUpdate, ev.Type)
	require.Equal(t, int64(4242), ev.Session.LeaseID)
	require.Equal(t, r3, ev.Revision)

	r4 := del(t, m.Client, cfg.Key(role, 7))
	ev = next(t, ch)
	require.Equal(t, EventDel, ev.Type)
	require.Equal(t, int64(4242), ev.Session.LeaseID, "Del carries the last known record")
	require.Equal(t, r4, ev.Revision)
	require.Less(t, r1, r2)
	require.Less(t, r2, r3)
	require.Less(t, r3, r4)

	require.Empty(t, w.Sessions())
	require.Eventually(t, func() bool { return w.Revision() >= r4 }, waitFor, 10*time.Millisecond)
	require.Equal(t, 1.0, value(t, metrics.Events.WithLabelValues(role, "add")))
	require.Equal(t, 2.0, value(t, metrics.Events.WithLabelValues(role, "update")))
	require.Equal(t, 1.0, value(t, metrics.Events.WithLabelValues(role, "del")))
	require.Equal(t, 0.0, value(t, metrics.KnownSessions.WithLabelValues(role)))
	require.InDelta(t, float64(time.Now().Unix()), value(t, metrics.LastSyncSecond.WithLabelValues(role)), 60)
}

func TestWatcherExclusiveProcessAndOtherRoles(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "rootcoord"
	s := rec(role, 3)
	s.Exclusive = true
	ctx := context.Background()
	_, err := m.Client.Txn(ctx).Then(
		clientv3.OpPut(cfg.Key(role, 3), string(mustEncode(t, s))),
		clientv3.OpPut(cfg.ActiveKey(role), string(mustEncode(t, s))),
	).Commit()
	require.NoError(t, err)
	other := rec(role+"x", 4)
	putSession(t, m.Client, cfg, other)
	put(t, m.Client, cfg.ActiveKey(role+"x"), mustEncode(t, other))

	listed, rev, err := List(ctx, m.Client, cfg, role)
	require.NoError(t, err)
	require.Equal(t, []int64{3}, ids(listed))
	require.Positive(t, rev)

	w := newWatcher(t, m.Client, cfg, fastWatchConfig(role))
	waitSynced(t, w)
	ch := w.Subscribe(ctx)
	ev := next(t, ch)
	require.Equal(t, EventAdd, ev.Type)
	require.Equal(t, int64(3), ev.Session.ServerID)

	// A standby of the role, then the active process lets its active key go:
	// neither is a change of process 3.
	standby := rec(role, 5)
	standby.Exclusive = true
	putSession(t, m.Client, cfg, standby)
	require.Equal(t, int64(5), next(t, ch).Session.ServerID)
	del(t, m.Client, cfg.ActiveKey(role))
	putSession(t, m.Client, cfg, rec(role+"x", 6))
	last := del(t, m.Client, cfg.Key(role, 3))
	ev = next(t, ch)
	require.Equal(t, EventDel, ev.Type, "Del only when both keys are gone")
	require.Equal(t, int64(3), ev.Session.ServerID)
	require.Equal(t, last, ev.Revision)
	require.Equal(t, []int64{5}, ids(w.Sessions()))
}

func TestWatcherSkipsBadValues(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "datanode"
	metrics, err := NewMetrics(nil)
	require.NoError(t, err)
	huge := `{"ServerID":1,"ServerName":"datanode","HostName":"` + strings.Repeat("x", 1<<20) + `"}`
	bad := []struct {
		name string
		val  string
	}{
		{"not json", "{not json"},
		{"empty", ""},
		{"huge", huge},
		{"wrong type", `{"ServerID":"one","ServerName":"datanode"}`},
		{"array", `[1,2,3]`},
		{"no ServerID", `{"ServerName":"datanode"}`},
		{"other ServerID than the key's", string(mustEncode(t, rec(role, 99)))},
	}
	// Half of the bad values are there before the watcher starts (found by
	// its list), half arrive on the watch.
	for i, b := range bad[:3] {
		put(t, m.Client, cfg.Key(role, int64(i+1)), []byte(b.val))
	}
	core, logs := observer.New(zap.WarnLevel)
	w := newWatcher(t, m.Client, cfg, fastWatchConfig(role), WithMetrics(metrics), WithLogger(zap.New(core)))
	waitSynced(t, w)
	ch := w.Subscribe(context.Background())
	for i, b := range bad[3:] {
		put(t, m.Client, cfg.Key(role, int64(i+4)), []byte(b.val))
	}
	good := rec(role, 50)
	putSession(t, m.Client, cfg, good)
	ev := next(t, ch)
	require.Equal(t, EventAdd, ev.Type)
	require.Equal(t, int64(50), ev.Session.ServerID, "valid sessions are still delivered")
	require.Equal(t, float64(len(bad)), value(t, metrics.MalformedSkip.WithLabelValues(role)))
	require.Equal(t, len(bad), logs.FilterMessage("skipping malformed session value").Len(), "one warning per value")

	// A value that turns malformed is that key gone.
	put(t, m.Client, cfg.Key(role, 50), []byte("garbage"))
	ev = next(t, ch)
	require.Equal(t, EventDel, ev.Type)
	require.Equal(t, int64(50), ev.Session.ServerID)
	require.Empty(t, w.Sessions())

	listed, _, err := List(context.Background(), m.Client, cfg, role)
	require.NoError(t, err)
	require.Empty(t, listed, "List skips malformed values too")
}

func TestWatcherVersionFilter(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "querynode"
	metrics, err := NewMetrics(nil)
	require.NoError(t, err)
	withVersion := func(id int64, v string) Session {
		s := rec(role, id)
		s.Version = v
		return s
	}
	putSession(t, m.Client, cfg, withVersion(1, "2.4.1"))
	putSession(t, m.Client, cfg, withVersion(2, "2.3.9")) // outside, found by the list
	wc := fastWatchConfig(role)
	wc.VersionRange = ">= 2.4.0, < 3.0.0"
	w := newWatcher(t, m.Client, cfg, wc, WithMetrics(metrics))
	waitSynced(t, w)
	ch := w.Subscribe(context.Background())
	v := newView(t)
	v.apply(next(t, ch))
	require.Equal(t, []int64{1}, ids(w.Sessions()))

	steps := []struct {
		name string
		s    Session
		typ  EventType
	}{
		{"outside on the watch", withVersion(3, "3.0.0"), 0},
		{"not a version", withVersion(4, "latest"), 0},
		{"into the range is an Add", withVersion(2, "2.4.0"), EventAdd},
		{"out of the range is a Del", withVersion(1, "3.1.0"), EventDel},
		{"within the range is an Update", withVersion(2, "2.9.0"), EventUpdate},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			rev := putSession(t, m.Client, cfg, st.s)
			if st.typ == 0 {
				require.Eventually(t, func() bool { return w.Revision() >= rev }, waitFor, 5*time.Millisecond)
				require.Empty(t, ch, "a session outside the range is invisible")
				return
			}
			ev := next(t, ch)
			v.apply(ev)
			require.Equal(t, st.typ, ev.Type)
			require.Equal(t, st.s.ServerID, ev.Session.ServerID)
			require.Equal(t, rev, ev.Revision)
		})
	}
	require.Equal(t, []int64{2}, ids(w.Sessions()))
	require.Equal(t, 4.0, value(t, metrics.FilteredSkip.WithLabelValues(role)))
}

func TestWatcherSnapshotThenChanges(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "indexnode"
	for _, id := range []int64{9, 2, 5} {
		putSession(t, m.Client, cfg, rec(role, id))
	}
	w := newWatcher(t, m.Client, cfg, fastWatchConfig(role))
	early := w.Subscribe(context.Background()) // before the first list
	waitSynced(t, w)
	require.Equal(t, []int64{2, 5, 9}, ids(w.Sessions()))
	late := w.Subscribe(context.Background())
	for _, ch := range []<-chan Event{early, late} {
		for _, id := range []int64{2, 5, 9} {
			ev := next(t, ch)
			require.Equal(t, EventAdd, ev.Type)
			require.Equal(t, id, ev.Session.ServerID)
		}
	}
	rev := del(t, m.Client, cfg.Key(role, 5))
	for _, ch := range []<-chan Event{early, late} {
		ev := next(t, ch)
		require.Equal(t, EventDel, ev.Type)
		require.Equal(t, rev, ev.Revision)
	}
	require.Equal(t, []int64{2, 9}, ids(w.Sessions()))
}

func TestWatcherSlowSubscriberDoesNotDelayFastOne(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "querynode"
	wc := fastWatchConfig(role)
	wc.SubscriberBuffer = 1
	w := newWatcher(t, m.Client, cfg, wc)
	waitSynced(t, w)
	_ = w.Subscribe(context.Background()) // never read
	fast := w.Subscribe(context.Background())
	var last int64
	for i := int64(1); i <= 100; i++ {
		s := rec(role, i%5+1)
		s.LeaseID = i
		last = putSession(t, m.Client, cfg, s)
	}
	v := newView(t)
	for v.rev[1] < last {
		v.apply(next(t, fast))
	}
	require.Len(t, v.seen, 5)
	require.Equal(t, int64(100), v.seen[1].LeaseID)
}

func TestWatcherCloseIsIdempotent(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	w, err := NewWatcher(m.Client, cfg, fastWatchConfig("querynode"))
	require.NoError(t, err)
	waitSynced(t, w)
	a := w.Subscribe(context.Background())
	b := w.Subscribe(context.Background())
	require.NoError(t, w.Close())
	require.NoError(t, w.Close())
	requireClosed(t, a)
	requireClosed(t, b)
	requireClosed(t, w.Subscribe(context.Background()))
}

func TestWatcherLastSyncMovesOnQuietRole(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "querynode"
	metrics, err := NewMetrics(nil)
	require.NoError(t, err)
	putSession(t, m.Client, cfg, rec(role, 1))
	wc := fastWatchConfig(role)
	wc.ProgressInterval = 30 * time.Millisecond
	w := newWatcher(t, m.Client, cfg, wc, WithMetrics(metrics))
	waitSynced(t, w)
	first := w.LastSync()
	require.False(t, first.IsZero())

	// Nothing is written: the revision check confirms the set.
	require.Eventually(t, func() bool { return w.LastSync().After(first.Add(50 * time.Millisecond)) },
		waitFor, 10*time.Millisecond)
	// Writes elsewhere in etcd move the store: progress notifications do.
	put(t, m.Client, "elsewhere", []byte("x"))
	mid := w.LastSync()
	require.Eventually(t, func() bool { return w.LastSync().After(mid.Add(50 * time.Millisecond)) },
		waitFor, 10*time.Millisecond)
	require.Zero(t, total(t, metrics.Resyncs), "a healthy quiet watch is not re-listed")
	require.Equal(t, []int64{1}, ids(w.Sessions()))
}
