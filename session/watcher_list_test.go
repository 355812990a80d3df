package session

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

// rangeLog records the Range requests a client sends, and runs after,
// when set, after each one.
type rangeLog struct {
	mu    sync.Mutex
	reqs  []*etcdserverpb.RangeRequest
	after func(n int)
}

func (l *rangeLog) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if r, ok := req.(*etcdserverpb.RangeRequest); ok {
		l.mu.Lock()
		l.reqs = append(l.reqs, r)
		n, after := len(l.reqs), l.after
		l.mu.Unlock()
		if after != nil {
			after(n)
		}
	}
	return err
}

func (l *rangeLog) requests() []*etcdserverpb.RangeRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*etcdserverpb.RangeRequest(nil), l.reqs...)
}

// loggedClient returns a client of m whose Range requests l records.
func loggedClient(t *testing.T, m *etcdtest.Member, l *rangeLog) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.Endpoint()},
		DialTimeout: waitFor,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(l.intercept)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// A list reads the role in pages of ListPageSize keys, every page at the
// revision of the first: what is written between two pages is not seen.
func TestListReadsPagesAtOneRevision(t *testing.T) {
	t.Parallel()
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "querynode"
	for id := int64(1); id <= 25; id++ {
		putSession(t, m.Client, cfg, rec(role, id))
	}
	l := &rangeLog{}
	l.after = func(n int) {
		if n == 1 { // between the first page and the second
			putSession(t, m.Client, cfg, rec(role, 26))
			del(t, m.Client, cfg.Key(role, 25))
		}
	}
	cli := loggedClient(t, m, l)
	st := newState(cfg, role, versionFilter{})
	rev, err := listRole(context.Background(), cli, cfg, role, 10, st)
	require.NoError(t, err)
	st.endList(rev)
	got := st.sessions()
	require.Len(t, got, 25)
	require.Equal(t, int64(25), got[24].ServerID, "the list is the store at its first page's revision")

	reqs := l.requests()
	require.Len(t, reqs, 3, "25 keys in pages of 10")
	for i, r := range reqs {
		require.Equal(t, int64(10), r.Limit, "request %d", i)
		if i > 0 {
			require.Equal(t, rev, r.Revision, "request %d reads at the first's revision", i)
			require.Greater(t, string(r.Key), string(reqs[i-1].Key), "request %d goes on after the last key read", i)
		}
	}
	require.Zero(t, reqs[0].Revision, "the first page reads the current revision")
}

// When the list's revision is compacted between two pages, the list starts
// again at the current revision.
func TestListRestartsWhenItsRevisionIsCompacted(t *testing.T) {
	t.Parallel()
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "querynode"
	for id := int64(1); id <= 5; id++ {
		putSession(t, m.Client, cfg, rec(role, id))
	}
	l := &rangeLog{}
	l.after = func(n int) {
		if n == 1 {
			del(t, m.Client, cfg.Key(role, 5))
			etcdtest.Compact(t, m.Client, putSession(t, m.Client, cfg, rec(role, 6)))
		}
	}
	cli := loggedClient(t, m, l)
	st := newState(cfg, role, versionFilter{})
	rev, err := listRole(context.Background(), cli, cfg, role, 3, st)
	require.NoError(t, err)
	st.endList(rev)
	require.Equal(t, []int64{1, 2, 3, 4, 6}, ids(st.sessions()))
	require.Equal(t, etcdtest.CurrentRevision(t, m.Client), rev)
	require.Len(t, l.requests(), 4, "a first page, a compacted second, then the role again in two pages")
}

// A watcher's initial list is paged too.
func TestWatcherSyncsInPages(t *testing.T) {
	t.Parallel()
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	const role = "querynode"
	for id := int64(1); id <= 12; id++ {
		putSession(t, m.Client, cfg, rec(role, id))
	}
	l := &rangeLog{}
	cli := loggedClient(t, m, l)
	wc := fastWatchConfig(role)
	wc.ListPageSize = 5
	wc.ProgressInterval = 0 // no revision checks among the requests counted
	w := newWatcher(t, cli, cfg, wc)
	waitSynced(t, w)
	require.Len(t, w.Sessions(), 12)
	reqs := l.requests()
	require.Len(t, reqs, 3, "12 keys in pages of 5")
	for _, r := range reqs {
		require.Equal(t, int64(5), r.Limit)
	}
}

func TestWatchConfigRejectsListPageSizeBelowOne(t *testing.T) {
	t.Parallel()
	wc := DefaultWatchConfig("querynode")
	require.Equal(t, 10000, wc.ListPageSize)
	wc.ListPageSize = 0
	require.ErrorContains(t, wc.Validate(), "ListPageSize (0)")
}
