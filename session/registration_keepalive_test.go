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

// regState waits until r is in state want.
func regState(t testing.TB, r *session.Registration, want session.State, d time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return r.State() == want }, d, 5*time.Millisecond,
		"registration state %s, want %s", r.State(), want)
}

// TestCutFromEtcdIsDisconnectedThenLostOnlyWhenEtcdSaysSo cuts the network
// between the client and etcd for longer than the TTL, while etcd runs and
// expires the lease. The registration is Disconnected (not lost) within
// the TTL, an active process is fenced, and only once etcd answers again
// and says the lease is gone is it Lost and registered again: same
// ServerID, same Incarnation, a new lease.
func TestCutFromEtcdIsDisconnectedThenLostOnlyWhenEtcdSaysSo(t *testing.T) {
	for _, exclusive := range []bool{false, true} {
		t.Run(map[bool]string{false: "non-exclusive", true: "exclusive"}[exclusive], func(t *testing.T) {
			m := etcdtest.Start(t)
			px := etcdtest.NewProxy(t, m.Endpoint())
			cli := etcdtest.NewClient(t, px.Addr())
			cfg := regConfig(2 * time.Second)
			metrics := regMetrics(t)
			r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", exclusive), cfg, session.WithMetrics(metrics))
			first := r.Session()
			require.Len(t, first.Incarnation, 16)
			lost := r.Lost()
			active, fenced := r.Tenure()
			require.True(t, regClosed(active))
			require.True(t, r.IsActive())

			px.Cut(t)
			regState(t, r, session.StateDisconnected, cfg.TTL+time.Second)
			require.Equal(t, exclusive, regClosed(fenced), "an active exclusive process is fenced at the local deadline")
			require.False(t, regClosed(lost), "a missed deadline is not a lost lease")
			require.True(t, regClosed(r.Ready()), "still registered while Disconnected")
			require.Equal(t, 1.0, regCount(t, metrics.Disconnects, "querynode"))
			require.Error(t, r.LastError())
			// etcd expires the lease meanwhile.
			require.Eventually(t, func() bool { return regGet(t, m.Client, cfg.Key("querynode", first.ServerID)) == nil },
				cfg.TTL+3*time.Second, 20*time.Millisecond, "etcd expires the lease")
			require.False(t, regClosed(lost), "nothing is lost before etcd says so")

			px.Restore(t)
			regWait(t, lost, 10*time.Second, "Lost once etcd says the lease is gone")
			regState(t, r, session.StateConnected, 10*time.Second)
			again := r.Session()
			require.Equal(t, first.ServerID, again.ServerID, "same ServerID")
			require.Equal(t, first.Incarnation, again.Incarnation, "same Incarnation")
			require.NotEqual(t, first.LeaseID, again.LeaseID, "new lease")
			stored, kv := regRecord(t, m.Client, cfg.Key("querynode", first.ServerID))
			require.Equal(t, again.LeaseID, kv.Lease)
			require.Equal(t, first.Incarnation, stored.Incarnation)
			require.Eventually(t, r.IsActive, 5*time.Second, 10*time.Millisecond, "active again")
			if exclusive {
				_, kv := regRecord(t, m.Client, cfg.ActiveKey("querynode"))
				require.Equal(t, again.LeaseID, kv.Lease, "re-registration contends again and wins a free role")
			}
			require.False(t, regClosed(r.Lost()), "the new lease has an open Lost channel")
			require.Equal(t, 2.0, regCount(t, metrics.Registrations, "querynode"))
			require.Equal(t, 1.0, regCount(t, metrics.LeasesLost, "querynode"))
			require.NoError(t, r.Err())
			require.NoError(t, r.LastError())
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

// TestKeepAliveDeadlineFollowsTheClock: the registration is Disconnected
// when the injected clock passes the last acknowledgement plus the TTL less
// the fence margin, not when the keepalive channel closes in real time.
// Under LostPolicy Exit, etcd saying the lease is gone ends the
// Registration.
func TestKeepAliveDeadlineFollowsTheClock(t *testing.T) {
	m := etcdtest.Start(t)
	px := etcdtest.NewProxy(t, m.Endpoint())
	cli := etcdtest.NewClient(t, px.Addr())
	clock := clockwork.NewFakeClock()
	cfg := regConfig(2 * time.Second)
	cfg.FenceMargin = 500 * time.Millisecond
	cfg.LostPolicy = session.Exit
	metrics := regMetrics(t)
	r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", false), cfg,
		session.WithClock(clock), session.WithMetrics(metrics))

	px.Cut(t)
	// Real time passes the TTL (the client's own keepalive channel closes),
	// the fake clock does not: the registration stays Connected.
	require.Never(t, func() bool { return r.State() != session.StateConnected }, cfg.TTL+500*time.Millisecond, 50*time.Millisecond)
	clock.Advance(cfg.TTL - cfg.FenceMargin - time.Millisecond)
	require.Never(t, func() bool { return r.State() != session.StateConnected }, 200*time.Millisecond, 20*time.Millisecond)
	clock.Advance(time.Millisecond)
	regState(t, r, session.StateDisconnected, time.Second)
	require.False(t, regClosed(r.Lost()))

	px.Restore(t) // etcd expired the lease in real time meanwhile
	regWait(t, r.Lost(), 10*time.Second, "Lost once etcd says the lease is gone")
	regWait(t, r.Done(), time.Second, "Done under LostPolicy Exit")
	require.Equal(t, session.StateClosed, r.State())
	require.ErrorIs(t, r.Err(), session.ErrLeaseLost)
	require.False(t, regClosed(r.Ready()))
	require.Equal(t, 1.0, regCount(t, metrics.LeasesLost, "querynode"))
	require.Equal(t, 1.0, regCount(t, metrics.Registrations, "querynode"), "no re-registration under Exit")
	require.ErrorIs(t, r.MarkStopping(regCtx(t)), session.ErrLeaseLost)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.Close(ctx)
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

// TestMissedDeadlineWithLiveLeaseResumesTheSameLease: when the local
// deadline passes but etcd still holds the lease, the registration is
// Disconnected (an active process fenced) and, at the next
// acknowledgement, Connected again on the same lease: no new key, no
// event, and the active process is active again only once it has read the
// active key as its own.
func TestMissedDeadlineWithLiveLeaseResumesTheSameLease(t *testing.T) {
	m := etcdtest.Start(t)
	clock := clockwork.NewFakeClock()
	cfg := regConfig(2 * time.Second)
	r := regMust(t, m.Client, regSession("rootcoord", "10.0.0.1:1", true), cfg, session.WithClock(clock))
	first := r.Session()
	require.True(t, r.IsActive())
	_, fenced := r.Tenure()
	wctx, cancel := context.WithCancel(regCtx(t))
	defer cancel()
	wch := m.Client.Watch(wctx, cfg.Prefix(), clientv3.WithPrefix(),
		clientv3.WithRev(etcdtest.CurrentRevision(t, m.Client)+1))

	// Past the deadline by the clock; real acknowledgements keep coming
	// and bring it back, so the state is read through its changes.
	st, changed := r.StateAndChange()
	require.Equal(t, session.StateConnected, st)
	clock.Advance(cfg.TTL)
	regWait(t, changed, 5*time.Second, "a state change after the deadline passed")
	regWait(t, fenced, time.Second, "the active term ends at the deadline")
	require.Eventually(t, func() bool { return r.State() == session.StateConnected && r.IsActive() },
		10*time.Second, 10*time.Millisecond, "connected and active again")
	require.False(t, regClosed(r.Lost()))
	require.Equal(t, first, r.Session(), "same lease, same record")

	_, err := m.Client.Put(regCtx(t), cfg.Prefix()+"/zz-sentinel", "x")
	require.NoError(t, err)
	for done := false; !done; {
		select {
		case resp := <-wch:
			require.NoError(t, resp.Err())
			for _, ev := range resp.Events {
				require.Equal(t, cfg.Prefix()+"/zz-sentinel", string(ev.Kv.Key), "no session key was written or deleted")
				done = true
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the watch did not reach the sentinel")
		}
	}
}
