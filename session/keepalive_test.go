package session_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// TestLostDetectedWithinTTLAndReregistered cuts the network between the
// client and etcd: keepalives are no longer acknowledged, Lost must close
// within TTL + 1 s, and once the network heals the Registration must be
// back under the same ServerID with a new lease.
func TestLostDetectedWithinTTLAndReregistered(t *testing.T) {
	for _, exclusive := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-exclusive", true: "exclusive"}[exclusive], func(t *testing.T) {
			m := etcdtest.Start(t)
			px := etcdtest.NewProxy(t, m.Endpoint())
			cli := etcdtest.NewClient(t, px.Addr())
			cfg := regConfig(2 * time.Second)
			metrics := regMetrics(t)
			r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", exclusive), cfg, session.WithMetrics(metrics))
			first := r.Session()
			lost := r.Lost()
			require.True(t, r.IsActive())

			px.Cut(t)
			took := regWait(t, lost, cfg.TTL+time.Second, "Lost after the network was cut")
			t.Logf("Lost() closed %s after the cut (TTL %s)", took, cfg.TTL)
			require.False(t, regClosed(r.Ready()), "Ready is a new, open channel after a loss")
			require.False(t, r.IsActive())
			require.False(t, regClosed(r.Done()), "LostPolicy Reregister does not end the registration")
			require.Equal(t, 1.0, regCount(t, metrics.LeasesLost, "querynode"))

			ready, active := r.Ready(), r.Active()
			px.Restore(t)
			took = regWait(t, ready, 15*time.Second, "re-registration after the network healed")
			t.Logf("re-registered %s after the network healed", took)
			again := r.Session()
			require.Equal(t, first.ServerID, again.ServerID, "same ServerID")
			require.NotEqual(t, first.LeaseID, again.LeaseID, "new lease: a new incarnation")
			stored, kv := regRecord(t, m.Client, cfg.Key("querynode", first.ServerID))
			require.Equal(t, again.LeaseID, kv.Lease)
			require.Equal(t, again.LeaseID, stored.LeaseID)
			regWait(t, active, time.Second, "Active after re-registration")
			if exclusive {
				_, kv := regRecord(t, m.Client, cfg.ActiveKey("querynode"))
				require.Equal(t, again.LeaseID, kv.Lease, "re-registration contends again and wins a free role")
			}
			require.True(t, regClosed(lost), "the old Lost channel stays closed")
			require.False(t, regClosed(r.Lost()), "the new incarnation has an open Lost channel")
			require.Equal(t, 2.0, regCount(t, metrics.Registrations, "querynode"))
			require.NoError(t, r.Err())
		})
	}
}

// TestLeaseRevokedElsewhereIsLostAtOnce: etcd saying the lease is gone
// loses it at the next keepalive, long before the TTL runs out.
func TestLeaseRevokedElsewhereIsLostAtOnce(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(6 * time.Second)
	r := regMust(t, m.Client, regSession("querynode", "10.0.0.1:1", false), cfg)
	first := r.Session()
	lost, ready := r.Lost(), r.Ready()
	_, err := m.Client.Revoke(regCtx(t), clientv3.LeaseID(first.LeaseID))
	require.NoError(t, err)
	took := regWait(t, lost, cfg.TTL/2, "Lost after the lease was revoked")
	t.Logf("Lost() closed %s after the revoke (TTL %s)", took, cfg.TTL)
	<-ready // still the closed channel of the first incarnation
	regWait(t, r.Ready(), 5*time.Second, "re-registration")
	require.Equal(t, first.ServerID, r.Session().ServerID)
	require.NotEqual(t, first.LeaseID, r.Session().LeaseID)
	_, kv := regRecord(t, m.Client, cfg.Key("querynode", first.ServerID))
	require.Equal(t, r.Session().LeaseID, kv.Lease)
}

// TestKeepAliveDeadlineFollowsTheClock: the lease is lost when the
// injected clock passes the last acknowledgement plus the TTL, not when
// the keepalive channel closes in real time. Under LostPolicy Exit the
// loss ends the Registration.
func TestKeepAliveDeadlineFollowsTheClock(t *testing.T) {
	m := etcdtest.Start(t)
	px := etcdtest.NewProxy(t, m.Endpoint())
	cli := etcdtest.NewClient(t, px.Addr())
	clock := clockwork.NewFakeClock()
	cfg := regConfig(time.Second)
	cfg.LostPolicy = session.Exit
	metrics := regMetrics(t)
	r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", false), cfg,
		session.WithClock(clock), session.WithMetrics(metrics))

	px.Cut(t)
	// Real time passes the TTL (the client's own keepalive channel closes),
	// the fake clock does not: the lease is not declared lost.
	require.Never(t, func() bool { return regClosed(r.Lost()) }, cfg.TTL+500*time.Millisecond, 50*time.Millisecond)
	clock.Advance(cfg.TTL - time.Millisecond)
	require.Never(t, func() bool { return regClosed(r.Lost()) }, 200*time.Millisecond, 20*time.Millisecond)
	clock.Advance(time.Millisecond)
	regWait(t, r.Lost(), time.Second, "Lost once the clock reached the deadline")
	regWait(t, r.Done(), time.Second, "Done under LostPolicy Exit")
	require.ErrorIs(t, r.Err(), session.ErrLeaseLost)
	require.False(t, regClosed(r.Ready()))
	require.Equal(t, 1.0, regCount(t, metrics.LeasesLost, "querynode"))
	require.Equal(t, 1.0, regCount(t, metrics.Registrations, "querynode"), "no re-registration under Exit")
	require.ErrorIs(t, r.MarkStopping(regCtx(t)), session.ErrLeaseLost)

	px.Restore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.Close(ctx) // revoking a lost lease may fail: it has expired
	require.ErrorIs(t, r.Err(), session.ErrLeaseLost, "Close keeps the reason")
}

// flakyLease breaks the first keepalive stream after one acknowledgement,
// as a broken connection would; later streams are the client's own.
type flakyLease struct {
	clientv3.Lease
	calls atomic.Int32
}

func (f *flakyLease) KeepAlive(ctx context.Context, id clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	ch, err := f.Lease.KeepAlive(ctx, id)
	if err != nil || f.calls.Add(1) > 1 {
		return ch, err
	}
	out := make(chan *clientv3.LeaseKeepAliveResponse)
	go func() {
		defer close(out)
		select {
		case resp, ok := <-ch:
			if ok {
				select {
				case out <- resp:
				case <-ctx.Done():
				}
			}
		case <-ctx.Done():
		}
	}()
	return out, nil
}

func TestKeepAliveStreamIsReestablishedOnTheSameLease(t *testing.T) {
	m := etcdtest.Start(t)
	flaky := &flakyLease{Lease: m.Client.Lease}
	cli := *m.Client
	cli.Lease = flaky
	cfg := regConfig(2 * time.Second)
	metrics := regMetrics(t)
	r := regMust(t, &cli, regSession("querynode", "10.0.0.1:1", false), cfg, session.WithMetrics(metrics))
	first := r.Session()

	require.Eventually(t, func() bool { return regCount(t, metrics.KeepAliveFailed, "querynode") >= 1 },
		cfg.TTL, 10*time.Millisecond, "the broken stream is counted")
	// Past the first stream's deadline the lease is still kept.
	require.Never(t, func() bool { return regClosed(r.Lost()) }, cfg.TTL+500*time.Millisecond, 50*time.Millisecond)
	require.GreaterOrEqual(t, flaky.calls.Load(), int32(2), "keepalive was re-established")
	require.Equal(t, first, r.Session(), "same lease")
	_, kv := regRecord(t, m.Client, cfg.Key("querynode", first.ServerID))
	require.Equal(t, first.LeaseID, kv.Lease)
}

// TestReregistrationMovesKeysWithoutDeleting: when the deadline passes but
// etcd still holds the lease (an outage during which etcd kept it), the
// keys move to the new lease: watchers see updates, never a delete.
func TestReregistrationMovesKeysWithoutDeleting(t *testing.T) {
	m := etcdtest.Start(t)
	clock := clockwork.NewFakeClock()
	cfg := regConfig(2 * time.Second)
	r := regMust(t, m.Client, regSession("rootcoord", "10.0.0.1:1", true), cfg, session.WithClock(clock))
	first := r.Session()
	require.True(t, r.IsActive())
	wctx, cancel := context.WithCancel(regCtx(t))
	defer cancel()
	wch := m.Client.Watch(wctx, cfg.Prefix(), clientv3.WithPrefix(),
		clientv3.WithRev(etcdtest.CurrentRevision(t, m.Client)+1))

	lost := r.Lost()
	// No acknowledgement within the TTL, by the clock. A real acknowledgement
	// landing just after an advance moves the deadline on by a TTL, so the
	// clock is advanced again (once Lost had time to close) until it is.
	require.Eventually(t, func() bool {
		if regClosed(lost) {
			return true
		}
		clock.Advance(cfg.TTL)
		return false
	}, 5*time.Second, 250*time.Millisecond, "Lost once the clock passed the deadline")
	require.Eventually(t, func() bool { return regClosed(r.Ready()) && r.IsActive() },
		5*time.Second, 10*time.Millisecond, "registered and active again")
	again := r.Session()
	require.Equal(t, first.ServerID, again.ServerID)
	require.NotEqual(t, first.LeaseID, again.LeaseID)
	for _, key := range []string{cfg.Key("rootcoord", first.ServerID), cfg.ActiveKey("rootcoord")} {
		stored, kv := regRecord(t, m.Client, key)
		require.Equal(t, again.LeaseID, kv.Lease, key)
		require.Equal(t, again.LeaseID, stored.LeaseID, key)
	}
	ttl, err := m.Client.TimeToLive(regCtx(t), clientv3.LeaseID(first.LeaseID))
	require.NoError(t, err)
	require.LessOrEqual(t, ttl.TTL, int64(0), "the old lease is revoked")

	_, err = m.Client.Put(regCtx(t), cfg.Prefix()+"/zz-sentinel", "x")
	require.NoError(t, err)
	puts := 0
	for done := false; !done; {
		select {
		case resp := <-wch:
			require.NoError(t, resp.Err())
			for _, ev := range resp.Events {
				require.NotEqual(t, clientv3.EventTypeDelete, ev.Type, "%s was deleted", ev.Kv.Key)
				if string(ev.Kv.Key) == cfg.Prefix()+"/zz-sentinel" {
					done = true
				} else {
					puts++
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the watch did not reach the sentinel")
		}
	}
	require.Equal(t, 2, puts, "one update of each key")
}
