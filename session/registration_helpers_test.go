package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// regConfig is a configuration with a short TTL and quick retries, so
// fault tests finish in seconds.
func regConfig(ttl time.Duration) session.Config {
	cfg := session.DefaultConfig()
	cfg.RootPath = "regtest/meta"
	cfg.TTL = ttl
	cfg.RequestTimeout = time.Second
	cfg.Retry.Initial = 10 * time.Millisecond
	cfg.Retry.Max = 200 * time.Millisecond
	cfg.ReregisterBackoff.Initial = 50 * time.Millisecond
	cfg.ReregisterBackoff.Max = 500 * time.Millisecond
	return cfg
}

func regSession(role, addr string, exclusive bool) session.Session {
	return session.Session{ServerName: role, Address: addr, Exclusive: exclusive, Version: "2.4.1",
		ServerLabels: map[string]string{"zone": "a"}}
}

func regCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), etcdtest.DefaultTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// regMust registers s and closes the Registration at the end of the test.
func regMust(t testing.TB, cli *clientv3.Client, s session.Session, cfg session.Config, opts ...session.Option) *session.Registration {
	t.Helper()
	r, err := session.Register(regCtx(t), cli, s, cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.Close(ctx) // may fail when the test cut or closed the client
	})
	return r
}

func regClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// regWait waits for ch to close within d and returns how long it took.
func regWait(t testing.TB, ch <-chan struct{}, d time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-ch:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
		return 0
	}
}

// regGet returns key's current value, or nil when it is absent.
func regGet(t testing.TB, cli *clientv3.Client, key string) *mvccpb.KeyValue {
	t.Helper()
	resp, err := cli.Get(regCtx(t), key)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

// regRecord returns the decoded session at key, failing if it is absent.
func regRecord(t testing.TB, cli *clientv3.Client, key string) (session.Session, *mvccpb.KeyValue) {
	t.Helper()
	kv := regGet(t, cli, key)
	require.NotNil(t, kv, "%s is absent", key)
	s, err := session.Decode(kv.Value)
	require.NoError(t, err)
	return s, kv
}

// regKeys counts the keys under prefix.
func regKeys(t testing.TB, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(regCtx(t), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return resp.Count
}

func regCount(t testing.TB, c *prometheus.CounterVec, role string) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.WithLabelValues(role).Write(&m))
	return m.GetCounter().GetValue()
}

func regMetrics(t testing.TB) *session.Metrics {
	t.Helper()
	m, err := session.NewMetrics(nil)
	require.NoError(t, err)
	return m
}
