package session_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

func TestRegisterWritesRecordAndCloseRevokes(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	metrics := regMetrics(t)
	in := regSession("querynode", "10.0.0.1:21123", false)
	in.HostName = "node-a"
	r, err := session.Register(regCtx(t), m.Client, in, cfg, session.WithMetrics(metrics))
	require.NoError(t, err)

	got := r.Session()
	require.Equal(t, int64(1), got.ServerID, "the first ServerID of a fresh cluster")
	require.NotZero(t, got.LeaseID)
	key := cfg.Key("querynode", got.ServerID)
	require.Equal(t, "regtest/meta/session/querynode-1", key)

	stored, kv := regRecord(t, m.Client, key)
	require.Equal(t, got.LeaseID, kv.Lease, "the key is attached to the lease")
	require.Equal(t, got.ServerID, stored.ServerID)
	require.Equal(t, "querynode", stored.ServerName)
	require.Equal(t, "10.0.0.1:21123", stored.Address)
	require.Equal(t, "2.4.1", stored.Version)
	require.Equal(t, "node-a", stored.HostName)
	require.Equal(t, got.LeaseID, stored.LeaseID)
	require.False(t, stored.Stopping)
	require.Equal(t, map[string]string{"zone": "a"}, stored.ServerLabels)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(kv.Value, &fields))
	for _, f := range []string{"ServerID", "ServerName", "Address", "Exclusive", "Stopping", "Version", "LeaseID", "HostName"} {
		require.Contains(t, fields, f, "Milvus field name")
	}

	require.True(t, regClosed(r.Ready()), "Ready is closed once registered")
	require.True(t, regClosed(r.Active()), "a non-exclusive role is active at once")
	require.True(t, r.IsActive())
	require.False(t, regClosed(r.Lost()))
	require.False(t, regClosed(r.Done()))
	require.NoError(t, r.Err())
	require.Equal(t, 1.0, regCount(t, metrics.Registrations, "querynode"))

	// Close revokes at once, from several callers, and stays closed.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.Close(regCtx(t)) }()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Nil(t, regGet(t, m.Client, key), "the key is gone at once, not after the TTL")
	ttl, err := m.Client.TimeToLive(regCtx(t), clientv3.LeaseID(got.LeaseID))
	require.NoError(t, err)
	require.LessOrEqual(t, ttl.TTL, int64(0), "the lease is revoked")
	require.True(t, regClosed(r.Done()))
	require.NoError(t, r.Err())
	require.False(t, regClosed(r.Lost()), "Close is not a lost lease")
	require.NoError(t, r.Close(regCtx(t)), "Close is idempotent")
	require.ErrorIs(t, r.MarkStopping(regCtx(t)), session.ErrClosed)
}

func TestRegisterRejectsInvalidInput(t *testing.T) {
	m := etcdtest.Start(t)
	for _, tc := range []struct {
		name  string
		cfg   func(*session.Config)
		sess  func(*session.Session)
		field string
	}{
		{"empty RootPath", func(c *session.Config) { c.RootPath = "" }, nil, "RootPath"},
		{"TTL below a second", func(c *session.Config) { c.TTL = 500 * time.Millisecond }, nil, "TTL"},
		{"zero RequestTimeout", func(c *session.Config) { c.RequestTimeout = 0 }, nil, "RequestTimeout"},
		{"unknown LostPolicy", func(c *session.Config) { c.LostPolicy = 7 }, nil, "LostPolicy"},
		{"bad Retry", func(c *session.Config) { c.Retry.Initial = 0 }, nil, "Retry"},
		{"empty ServerName", nil, func(s *session.Session) { s.ServerName = "" }, "ServerName"},
		{"ServerName with a slash", nil, func(s *session.Session) { s.ServerName = "query/node" }, "ServerName"},
		{"ServerName id", nil, func(s *session.Session) { s.ServerName = "id" }, "ServerName"},
		{"empty Address", nil, func(s *session.Session) { s.Address = " " }, "Address"},
		{"negative ServerID", nil, func(s *session.Session) { s.ServerID = -1 }, "ServerID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := regConfig(2 * time.Second)
			s := regSession("querynode", "10.0.0.1:1", false)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if tc.sess != nil {
				tc.sess(&s)
			}
			r, err := session.Register(regCtx(t), m.Client, s, cfg)
			require.Error(t, err)
			require.Nil(t, r)
			require.Contains(t, err.Error(), tc.field)
			require.Zero(t, regKeys(t, m.Client, "regtest/"), "nothing is written to etcd")
			leases, err := m.Client.Leases(regCtx(t))
			require.NoError(t, err)
			require.Empty(t, leases.Leases, "no lease is granted")
		})
	}
	_, err := session.Register(regCtx(t), nil, regSession("querynode", "10.0.0.1:1", false), regConfig(2*time.Second))
	require.ErrorContains(t, err, "client")
}

func TestMarkStopping(t *testing.T) {
	for _, exclusive := range []bool{false, true} {
		t.Run(map[bool]string{false: "own key", true: "own and active key"}[exclusive], func(t *testing.T) {
			m := etcdtest.Start(t)
			cfg := regConfig(2 * time.Second)
			r := regMust(t, m.Client, regSession("rootcoord", "10.0.0.1:1", exclusive), cfg)
			s := r.Session()
			keys := []string{cfg.Key("rootcoord", s.ServerID)}
			if exclusive {
				require.True(t, r.IsActive())
				keys = append(keys, cfg.ActiveKey("rootcoord"))
			}
			require.NoError(t, r.MarkStopping(regCtx(t)))
			for _, key := range keys {
				stored, kv := regRecord(t, m.Client, key)
				require.True(t, stored.Stopping, key)
				require.Equal(t, s.LeaseID, kv.Lease, "%s stays on the same lease", key)
				require.Equal(t, s.LeaseID, stored.LeaseID)
				require.Equal(t, s.ServerID, stored.ServerID)
			}
			require.True(t, r.Session().Stopping)
			require.False(t, regClosed(r.Lost()))
		})
	}
}

func TestMarkStoppingDoesNotWriteAKeyItNoLongerHolds(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	r := regMust(t, m.Client, regSession("querynode", "10.0.0.1:1", false), cfg)
	key := cfg.Key("querynode", r.Session().ServerID)
	_, err := m.Client.Delete(regCtx(t), key)
	require.NoError(t, err)
	err = r.MarkStopping(regCtx(t))
	require.ErrorIs(t, err, session.ErrLeaseLost)
	require.Nil(t, regGet(t, m.Client, key), "the guarded put wrote nothing")
}

func TestRegisterKeyHeldByAnotherProcess(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	first := regSession("querynode", "10.0.0.1:1", false)
	first.ServerID = 5
	a := regMust(t, m.Client, first, cfg)

	cfg.Retry.Attempts = 2
	second := regSession("querynode", "10.0.0.2:1", false)
	second.ServerID = 5
	_, err := session.Register(regCtx(t), m.Client, second, cfg)
	require.ErrorIs(t, err, session.ErrKeyExists)

	stored, kv := regRecord(t, m.Client, cfg.Key("querynode", 5))
	require.Equal(t, "10.0.0.1:1", stored.Address, "the live process keeps its key")
	require.Equal(t, a.Session().LeaseID, kv.Lease)
	leases, err := m.Client.Leases(regCtx(t))
	require.NoError(t, err)
	require.Len(t, leases.Leases, 1, "the failed registration revoked its leases")
}

func TestReplaceStaleSessionAtTheSameAddress(t *testing.T) {
	for _, tc := range []struct {
		name      string
		exclusive bool
		replace   bool
	}{
		{"non-exclusive", false, true},
		{"exclusive active key", true, true},
		{"disabled", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := etcdtest.Start(t)
			cfg := regConfig(2 * time.Second)
			cfg.ReplaceStale = tc.replace
			const addr = "10.0.0.7:19530"

			crashed := etcdtest.NewClient(t, m.Endpoint())
			a := regMust(t, crashed, regSession("datacoord", addr, tc.exclusive), cfg)
			aKey := cfg.Key("datacoord", a.Session().ServerID)
			require.NoError(t, crashed.Close()) // crash: keepalive stops, nothing revoked
			require.NotNil(t, regGet(t, m.Client, aKey), "the stale key outlives the crash")

			other := regMust(t, m.Client, regSession("datacoord", "10.0.0.8:19530", false), cfg)
			start := time.Now()
			b := regMust(t, m.Client, regSession("datacoord", addr, tc.exclusive), cfg)
			t.Logf("registered over a stale session in %s", time.Since(start))
			require.NotEqual(t, a.Session().ServerID, b.Session().ServerID)
			require.NotNil(t, regGet(t, m.Client, cfg.Key("datacoord", other.Session().ServerID)),
				"a session at another address is left alone")
			if !tc.replace {
				require.NotNil(t, regGet(t, m.Client, aKey), "the stale key stays until its TTL")
				return
			}
			require.Nil(t, regGet(t, m.Client, aKey), "the stale key is gone at once")
			if tc.exclusive {
				require.True(t, b.IsActive(), "the restarted process is active at once")
				_, kv := regRecord(t, m.Client, cfg.ActiveKey("datacoord"))
				require.Equal(t, b.Session().LeaseID, kv.Lease)
			}
		})
	}
}

func TestRegisterContextEndsIt(t *testing.T) {
	m := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := session.Register(ctx, m.Client, regSession("querynode", "10.0.0.1:1", false), regConfig(2*time.Second))
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, regKeys(t, m.Client, "regtest/meta/session/querynode"))
}
