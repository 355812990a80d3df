package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

// A record whose ServerName is not the role of its key, or without an
// Address, is malformed: skipped with a warning and the metric, on the
// list and on the watch alike.
func TestWatcherSkipsRecordOfAnotherRoleOrWithoutAddress(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "querynode"
	metrics, err := NewMetrics(nil)
	require.NoError(t, err)
	withName := func(id int64, name string) Session {
		s := rec(role, id)
		s.ServerName = name
		return s
	}
	noAddress := rec(role, 3)
	noAddress.Address = ""
	bad := []struct {
		name string
		key  string
		s    Session
	}{
		{"another role", cfg.Key(role, 1), withName(1, "datanode")},
		{"a role sharing the prefix", cfg.Key(role, 2), withName(2, role+"x")},
		{"no address", cfg.Key(role, 3), noAddress},
		{"another role under the active key", cfg.ActiveKey(role), withName(4, "datanode")},
	}
	// Half are there before the watcher starts (found by its list), half
	// arrive on the watch.
	for _, b := range bad[:2] {
		put(t, m.Client, b.key, mustEncode(t, b.s))
	}
	core, logs := observer.New(zap.WarnLevel)
	w := newWatcher(t, m.Client, cfg, fastWatchConfig(role), WithMetrics(metrics), WithLogger(zap.New(core)))
	waitSynced(t, w)
	ch := w.Subscribe(context.Background())
	for _, b := range bad[2:] {
		put(t, m.Client, b.key, mustEncode(t, b.s))
	}
	good := rec(role, 50)
	putSession(t, m.Client, cfg, good)
	ev := next(t, ch)
	require.Equal(t, EventAdd, ev.Type)
	require.Equal(t, int64(50), ev.Session.ServerID, "only the valid session is delivered")
	require.Equal(t, float64(len(bad)), value(t, metrics.MalformedSkip.WithLabelValues(role)))
	require.Equal(t, len(bad), logs.FilterMessage("skipping malformed session value").Len(), "one warning per value")

	// The active key of an exclusive role belongs to the role.
	active := rec(role, 60)
	active.Exclusive = true
	putSession(t, m.Client, cfg, active)
	put(t, m.Client, cfg.ActiveKey(role), mustEncode(t, active))
	ev = next(t, ch)
	require.Equal(t, EventAdd, ev.Type)
	require.Equal(t, int64(60), ev.Session.ServerID)

	// A record that loses its address is that key gone.
	good.Address = ""
	putSession(t, m.Client, cfg, good)
	ev = next(t, ch)
	require.Equal(t, EventDel, ev.Type)
	require.Equal(t, int64(50), ev.Session.ServerID)
	require.Equal(t, []int64{60}, ids(w.Sessions()))
	require.Equal(t, float64(len(bad)+1), value(t, metrics.MalformedSkip.WithLabelValues(role)))

	listed, _, err := List(context.Background(), m.Client, cfg, role)
	require.NoError(t, err)
	require.Equal(t, []int64{60}, ids(listed), "List skips them too")
}

// grpcSpy sits in an etcd client's gRPC chain. It records the ranges and
// watch creations the client sends, and can hold the watch streams'
// responses, which silences a watch while unary requests still work.
type grpcSpy struct {
	mu      sync.Mutex
	ranges  []pb.RangeRequest
	creates []pb.WatchCreateRequest
	hold    chan struct{} // non-nil: watch responses wait until it is closed
}

// newSpyClient returns a client of endpoint whose requests go through spy.
func newSpyClient(t testing.TB, endpoint string, spy *grpcSpy) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{
			grpc.WithChainUnaryInterceptor(spy.unary),
			grpc.WithChainStreamInterceptor(spy.stream),
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func (s *grpcSpy) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if r, ok := req.(*pb.RangeRequest); ok {
		s.mu.Lock()
		s.ranges = append(s.ranges, pb.RangeRequest{Key: r.Key, RangeEnd: r.RangeEnd,
			CountOnly: r.CountOnly, KeysOnly: r.KeysOnly, Limit: r.Limit})
		s.mu.Unlock()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (s *grpcSpy) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &spyStream{ClientStream: cs, spy: s}, nil
}

// holdWatches makes watch responses wait until the returned func is called.
func (s *grpcSpy) holdWatches() (release func()) {
	h := make(chan struct{})
	s.mu.Lock()
	s.hold = h
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(h)
		})
	}
}

func (s *grpcSpy) watchCreates() []pb.WatchCreateRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pb.WatchCreateRequest(nil), s.creates...)
}

// countOnlyRanges returns the ranges that read no value: revision checks.
func (s *grpcSpy) countOnlyRanges() []pb.RangeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []pb.RangeRequest
	for _, r := range s.ranges {
		if r.CountOnly || r.KeysOnly {
			out = append(out, r)
		}
	}
	return out
}

type spyStream struct {
	grpc.ClientStream
	spy *grpcSpy
}

func (ss *spyStream) SendMsg(m any) error {
	if r, ok := m.(*pb.WatchRequest); ok {
		if c := r.GetCreateRequest(); c != nil {
			ss.spy.mu.Lock()
			ss.spy.creates = append(ss.spy.creates, pb.WatchCreateRequest{Key: c.Key, RangeEnd: c.RangeEnd,
				StartRevision: c.StartRevision, ProgressNotify: c.ProgressNotify, PrevKv: c.PrevKv})
			ss.spy.mu.Unlock()
		}
	}
	return ss.ClientStream.SendMsg(m)
}

func (ss *spyStream) RecvMsg(m any) error {
	err := ss.ClientStream.RecvMsg(m)
	if _, ok := m.(*pb.WatchResponse); ok && err == nil {
		ss.spy.mu.Lock()
		h := ss.spy.hold
		ss.spy.mu.Unlock()
		if h != nil {
			select {
			case <-h:
			case <-ss.Context().Done():
				return ss.Context().Err()
			}
		}
	}
	return err
}

// Nothing reads a watch event's previous value, so the watch does not ask
// etcd to send it.
func TestWatcherWatchDoesNotAskForPrevKV(t *testing.T) {
	m := etcdtest.Start(t)
	spy := &grpcSpy{}
	cli := newSpyClient(t, m.Endpoint(), spy)
	cfg := testConfig(t)
	const role = "querynode"
	w := newWatcher(t, cli, cfg, fastWatchConfig(role))
	waitSynced(t, w)
	ch := w.Subscribe(context.Background())
	rev := putSession(t, m.Client, cfg, rec(role, 1))
	ev := next(t, ch)
	require.Equal(t, EventAdd, ev.Type)
	require.Equal(t, rev, ev.Revision)

	creates := spy.watchCreates()
	require.NotEmpty(t, creates)
	for _, c := range creates {
		require.Equal(t, cfg.RolePrefix(role), string(c.Key))
		require.True(t, c.ProgressNotify)
		require.False(t, c.PrevKv, "the watch asks for previous values nobody reads")
	}
}

// The revision check of a silent watch reads one key, not the role's
// prefix, and still finds a watch that stays silent while the store moves.
func TestWatcherIdleCheckReadsOneKeyAndFindsStaleWatch(t *testing.T) {
	m := etcdtest.Start(t)
	spy := &grpcSpy{}
	cli := newSpyClient(t, m.Endpoint(), spy)
	cfg := testConfig(t)
	const role = "querynode"
	metrics, err := NewMetrics(nil)
	require.NoError(t, err)
	for id := int64(1); id <= 20; id++ {
		putSession(t, m.Client, cfg, rec(role, id))
	}
	wc := fastWatchConfig(role)
	wc.ProgressInterval = 30 * time.Millisecond
	w := newWatcher(t, cli, cfg, wc, WithMetrics(metrics))
	waitSynced(t, w)
	ch := w.Subscribe(context.Background())
	v := newView(t)
	for len(v.seen) < 20 {
		v.apply(next(t, ch))
	}
	// The watch works: a change arrives on it.
	putSession(t, m.Client, cfg, rec(role, 21))
	v.apply(next(t, ch))
	require.Zero(t, total(t, metrics.Resyncs))

	release := spy.holdWatches()
	defer release()
	rev := putSession(t, m.Client, cfg, rec(role, 22))
	ev := next(t, ch)
	v.apply(ev)
	require.Equal(t, EventAdd, ev.Type)
	require.Equal(t, int64(22), ev.Session.ServerID, "found by the re-list of a stale watch")
	require.GreaterOrEqual(t, ev.Revision, rev)
	require.Positive(t, value(t, metrics.Resyncs.WithLabelValues(role, reasonStale)))
	release()

	checks := spy.countOnlyRanges()
	require.NotEmpty(t, checks, "the silent watch's revision was checked")
	for _, r := range checks {
		require.Equal(t, cfg.ActiveKey(role), string(r.Key))
		require.Empty(t, r.RangeEnd, "the revision check reads one key, not the role's prefix")
	}
}

// Whenever Revision returns R, Sessions reflects at least R: a re-list
// publishes its difference before it moves the revision. The test holds
// the hub's lock, so the watcher stops inside its publish; what it did
// before is visible.
func TestWatcherRevisionNeverAheadOfSessions(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoint())
	wcli := etcdtest.NewClient(t, proxy.Addr())
	cfg := testConfig(t)
	cfg.RequestTimeout = 500 * time.Millisecond
	const role = "querynode"
	metrics, err := NewMetrics(nil)
	require.NoError(t, err)
	adds := metrics.Events.WithLabelValues(role, EventAdd.String())
	wc := fastWatchConfig(role)
	wc.ProgressInterval = 0

	// checkHeld runs a re-list that adds one session while the hub's lock
	// is held, and checks the revision while the watcher waits for it.
	checkHeld := func(w *Watcher, wantAdds float64, rev int64) {
		t.Helper()
		var unlockOnce sync.Once
		unlock := func() { unlockOnce.Do(w.hub.mu.Unlock) }
		w.hub.mu.Lock()
		defer unlock()
		proxy.Restore(t)
		require.Eventually(t, func() bool { return value(t, adds) == wantAdds }, waitFor, 5*time.Millisecond,
			"the re-list reaches its publish")
		require.Less(t, w.Revision(), rev, "Revision moved ahead of Sessions")
		unlock()
		require.Eventually(t, func() bool { return w.Revision() >= rev }, waitFor, 5*time.Millisecond)
	}

	// The initial list.
	r1 := putSession(t, m.Client, cfg, rec(role, 1))
	proxy.Down(t)
	w := newWatcher(t, wcli, cfg, wc, WithMetrics(metrics))
	checkHeld(w, 1, r1)
	waitSynced(t, w)
	require.Equal(t, []int64{1}, ids(w.Sessions()))

	// A re-list after the watch broke on a compaction.
	proxy.Down(t)
	r2 := putSession(t, m.Client, cfg, rec(role, 2))
	putSession(t, m.Client, cfg, rec(role, 3))
	del(t, m.Client, cfg.Key(role, 3)) // so the watch's next revision is compacted
	etcdtest.Compact(t, m.Client, etcdtest.CurrentRevision(t, m.Client))
	checkHeld(w, 2, r2)
	require.Equal(t, []int64{1, 2}, ids(w.Sessions()))
	require.Positive(t, total(t, metrics.Resyncs), "found by a re-list, not by the watch")
}

// The same ServerID re-put under a new lease is an Update, not a Del and an
// Add; so is a change of Stopping alone or of Incarnation alone.
func TestWatcherUpdatesOnLeaseStoppingOrIncarnationAlone(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "querynode"
	ctx := context.Background()
	w := newWatcher(t, m.Client, cfg, fastWatchConfig(role))
	waitSynced(t, w)
	ch := w.Subscribe(ctx)
	v := newView(t)
	grant := func() clientv3.LeaseID {
		resp, err := m.Client.Grant(ctx, 60)
		require.NoError(t, err)
		return resp.ID
	}

	l1 := grant()
	s := rec(role, 7)
	s.LeaseID, s.Incarnation = int64(l1), "00000000000000aa"
	r := putSession(t, m.Client, cfg, s, clientv3.WithLease(l1))
	ev := next(t, ch)
	v.apply(ev)
	require.Equal(t, EventAdd, ev.Type)
	require.Equal(t, r, ev.Revision)

	l2 := grant()
	steps := []struct {
		name   string
		change func(*Session)
		lease  clientv3.LeaseID
	}{
		{"new lease", func(s *Session) { s.LeaseID = int64(l2) }, l2},
		{"stopping", func(s *Session) { s.Stopping = true }, l2},
		{"incarnation", func(s *Session) { s.Incarnation = "00000000000000bb" }, l2},
	}
	for _, st := range steps {
		st.change(&s)
		r := putSession(t, m.Client, cfg, s, clientv3.WithLease(st.lease))
		if st.name == "new lease" {
			_, err := m.Client.Revoke(ctx, l1) // the old lease no longer holds the key
			require.NoError(t, err)
		}
		ev := next(t, ch)
		v.apply(ev)
		require.Equal(t, EventUpdate, ev.Type, st.name)
		require.Equal(t, r, ev.Revision, st.name)
		require.True(t, sameRecord(s, ev.Session), "%s: %+v", st.name, ev.Session)
		require.Eventually(t, func() bool { ss := w.Sessions(); return len(ss) == 1 && sameRecord(s, ss[0]) },
			waitFor, 5*time.Millisecond, st.name)
	}
	_, err := m.Client.Revoke(ctx, l2)
	require.NoError(t, err)
	ev = next(t, ch)
	v.apply(ev)
	require.Equal(t, EventDel, ev.Type)
	require.Equal(t, "00000000000000bb", ev.Session.Incarnation)
	require.Empty(t, w.Sessions())
}
