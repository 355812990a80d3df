package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

func TestExclusiveStandbyTakesOver(t *testing.T) {
	const ttl = 2 * time.Second
	for _, tc := range []struct {
		name  string
		stop  func(t *testing.T, a *session.Registration, cli *clientv3.Client)
		bound time.Duration
	}{
		{"graceful stop", func(t *testing.T, a *session.Registration, _ *clientv3.Client) {
			require.NoError(t, a.MarkStopping(regCtx(t)))
			require.NoError(t, a.Close(regCtx(t)))
		}, time.Second},
		{"crash", func(t *testing.T, _ *session.Registration, cli *clientv3.Client) {
			require.NoError(t, cli.Close()) // no revoke: the lease must expire
		}, ttl + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := etcdtest.Start(t)
			cfg := regConfig(ttl)
			cliA := etcdtest.NewClient(t, m.Endpoint())
			a := regMust(t, cliA, regSession("rootcoord", "10.0.0.1:1", true), cfg)
			require.True(t, a.IsActive())
			require.True(t, regClosed(a.Active()))
			stored, kv := regRecord(t, m.Client, cfg.ActiveKey("rootcoord"))
			require.Equal(t, a.Session().ServerID, stored.ServerID)
			require.Equal(t, a.Session().LeaseID, kv.Lease, "the active key is on the process's lease")
			require.NotNil(t, regGet(t, m.Client, cfg.Key("rootcoord", a.Session().ServerID)), "and its own key too")

			b := regMust(t, m.Client, regSession("rootcoord", "10.0.0.2:1", true), cfg)
			require.False(t, b.IsActive(), "the second process stands by")
			require.True(t, regClosed(b.Ready()), "a standby is registered")
			bActive := b.Active()
			require.Never(t, func() bool { return regClosed(bActive) }, 200*time.Millisecond, 20*time.Millisecond)
			require.NotNil(t, regGet(t, m.Client, cfg.Key("rootcoord", b.Session().ServerID)))

			start := time.Now()
			tc.stop(t, a, cliA)
			regWait(t, bActive, tc.bound, "standby taking over")
			t.Logf("standby took over %s after the %s", time.Since(start), tc.name)
			require.True(t, b.IsActive())
			stored, kv = regRecord(t, m.Client, cfg.ActiveKey("rootcoord"))
			require.Equal(t, b.Session().ServerID, stored.ServerID)
			require.Equal(t, b.Session().LeaseID, kv.Lease)
		})
	}
}

func TestExclusiveStoppingStandbyDoesNotTakeOver(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	a := regMust(t, m.Client, regSession("rootcoord", "10.0.0.1:1", true), cfg)
	b := regMust(t, m.Client, regSession("rootcoord", "10.0.0.2:1", true), cfg)
	require.NoError(t, b.MarkStopping(regCtx(t)))
	stored, _ := regRecord(t, m.Client, cfg.Key("rootcoord", b.Session().ServerID))
	require.True(t, stored.Stopping)

	require.NoError(t, a.Close(regCtx(t)))
	require.Never(t, func() bool { return b.IsActive() }, 300*time.Millisecond, 20*time.Millisecond)
	require.Nil(t, regGet(t, m.Client, cfg.ActiveKey("rootcoord")), "a stopping process does not take the role")
}

func TestExclusiveStandbyStopsOnClose(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	regMust(t, m.Client, regSession("rootcoord", "10.0.0.1:1", true), cfg)
	b, err := session.Register(regCtx(t), m.Client, regSession("rootcoord", "10.0.0.2:1", true), cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, b.Close(ctx))
	require.Less(t, time.Since(start), 500*time.Millisecond, "a standby's watch stops at once")
	require.Nil(t, regGet(t, m.Client, cfg.Key("rootcoord", b.Session().ServerID)))
}
