package session_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// gatedLease blocks Revoke of one lease until released, and can fail
// grants.
type gatedLease struct {
	clientv3.Lease
	block     atomic.Int64
	once      sync.Once
	entered   chan struct{}
	release   chan struct{}
	failGrant atomic.Int32 // grants to fail
	grants    atomic.Int32
}

func newGatedLease(l clientv3.Lease) *gatedLease {
	return &gatedLease{Lease: l, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedLease) Grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error) {
	g.grants.Add(1)
	if g.failGrant.Load() > 0 {
		g.failGrant.Add(-1)
		return nil, context.DeadlineExceeded
	}
	return g.Lease.Grant(ctx, ttl)
}

func (g *gatedLease) Revoke(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error) {
	if int64(id) == g.block.Load() {
		g.once.Do(func() { close(g.entered) })
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Lease.Revoke(ctx, id)
}

// TestMarkStoppingDuringReregistrationReachesEtcd: MarkStopping called
// while a re-registration is under way (here: while it revokes the lost
// lease) must end with Stopping=true in etcd, and Identity must already
// name the lease etcd holds.
func TestMarkStoppingDuringReregistrationReachesEtcd(t *testing.T) {
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoint())
	g := newGatedLease(cli.Lease)
	cli.Lease = g
	cfg := regConfig(6 * time.Second)
	r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", false), cfg)
	first := r.Session()
	key := cfg.Key("querynode", first.ServerID)
	g.block.Store(first.LeaseID)

	_, err := m.Client.Revoke(regCtx(t), clientv3.LeaseID(first.LeaseID))
	require.NoError(t, err)
	regWait(t, g.entered, 10*time.Second, "re-registration reached the revoke of the old lease")

	_, kv := regRecord(t, m.Client, key)
	_, inc, idLease := r.Identity()
	require.Equal(t, kv.Lease, idLease, "Identity names the lease etcd holds")
	require.Equal(t, first.Incarnation, inc)

	require.NoError(t, r.MarkStopping(regCtx(t)))
	close(g.release)
	require.Eventually(t, func() bool {
		stored, _ := regRecord(t, m.Client, key)
		return stored.Stopping
	}, 5*time.Second, 10*time.Millisecond, "Stopping=true reaches etcd")
	require.True(t, r.Session().Stopping)
}

// TestMarkStoppingBeforeInstallIsWrittenAfterIt: a MarkStopping that finds
// the registration not yet in place returns nil, and the registration
// writes Stopping=true as soon as it is.
func TestMarkStoppingBeforeInstallIsWrittenAfterIt(t *testing.T) {
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoint())
	g := newGatedLease(cli.Lease)
	cli.Lease = g
	cfg := regConfig(6 * time.Second)
	r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", false), cfg)
	first := r.Session()
	key := cfg.Key("querynode", first.ServerID)
	g.failGrant.Store(3) // the re-registration needs a few attempts

	_, err := m.Client.Revoke(regCtx(t), clientv3.LeaseID(first.LeaseID))
	require.NoError(t, err)
	regState(t, r, session.StateReregistering, 5*time.Second)
	require.NoError(t, r.MarkStopping(regCtx(t)))
	regState(t, r, session.StateConnected, 10*time.Second)
	stored, kv := regRecord(t, m.Client, key)
	require.True(t, stored.Stopping, "the new lease's record carries Stopping")
	require.Equal(t, r.Session().LeaseID, kv.Lease)
}

// TestTwoLiveProcessesAtOneAddressDoNotEvictEachOther: a second process
// registered at the address of a live one replaces its session once (it
// may be the stale key of a previous run); the first registers again, and
// from then on neither revokes the other.
func TestTwoLiveProcessesAtOneAddressDoNotEvictEachOther(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	ma, mb := regMetrics(t), regMetrics(t)
	cliA := etcdtest.NewClient(t, m.Endpoint())
	cliB := etcdtest.NewClient(t, m.Endpoint())
	const addr = "10.0.0.9:19530"
	a := regMust(t, cliA, regSession("querynode", addr, false), cfg, session.WithMetrics(ma))
	b := regMust(t, cliB, regSession("querynode", addr, false), cfg, session.WithMetrics(mb)) // revokes A once
	require.NotEqual(t, a.Session().Incarnation, b.Session().Incarnation)
	require.Eventually(t, func() bool {
		return regCount(t, ma.Registrations, "querynode") == 2 && a.State() == session.StateConnected
	}, 10*time.Second, 10*time.Millisecond, "A registered again")
	require.Never(t, func() bool {
		return regCount(t, ma.LeasesLost, "querynode")+regCount(t, mb.LeasesLost, "querynode") > 1
	}, 3*cfg.TTL, 50*time.Millisecond, "registrations at one address keep revoking each other")
}

// TestEtcdOutageLongerThanTTLKeepsTheLease: etcd stopped for longer than
// the TTL extends every lease when it comes back, so the registration is
// Disconnected during the outage and resumes the same lease after it:
// never Lost, no key deleted or rewritten.
func TestEtcdOutageLongerThanTTLKeepsTheLease(t *testing.T) {
	m := etcdtest.Start(t)
	px := etcdtest.NewProxy(t, m.Endpoint())
	cli := etcdtest.NewClient(t, px.Addr())
	cfg := regConfig(2 * time.Second)
	r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", false), cfg)
	first := r.Session()
	key := cfg.Key("querynode", first.ServerID)
	rev := etcdtest.CurrentRevision(t, m.Client)
	lost := r.Lost()

	m.Stop(t)
	px.Down(t)
	regState(t, r, session.StateDisconnected, cfg.TTL+time.Second)
	require.Never(t, func() bool { return regClosed(lost) }, cfg.TTL, 50*time.Millisecond, "Lost during the outage")
	m.Restart(t)
	px.Restore(t)
	regState(t, r, session.StateConnected, 15*time.Second)
	require.False(t, regClosed(lost))
	require.Equal(t, first, r.Session(), "same lease, same record")

	wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := m.Client.Get(wctx, key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, first.LeaseID, resp.Kvs[0].Lease)
	require.LessOrEqual(t, resp.Kvs[0].ModRevision, rev, "the key was not rewritten")
}

// cancelAfterPutKV cancels the caller's context once etcd applied the put
// of key, and reports the cancellation instead of the response.
type cancelAfterPutKV struct {
	clientv3.KV
	key    string
	cancel context.CancelFunc
	done   atomic.Bool
}

func (k *cancelAfterPutKV) Txn(ctx context.Context) clientv3.Txn {
	return &cancelTxn{Txn: k.KV.Txn(ctx), kv: k}
}

type cancelTxn struct {
	clientv3.Txn
	kv  *cancelAfterPutKV
	put bool
}

func (t *cancelTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	for _, op := range ops {
		if op.IsPut() && string(op.KeyBytes()) == t.kv.key {
			t.put = true
		}
	}
	t.Txn = t.Txn.Then(ops...)
	return t
}
func (t *cancelTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.Txn = t.Txn.If(cs...); return t }
func (t *cancelTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }
func (t *cancelTxn) Commit() (*clientv3.TxnResponse, error) {
	resp, err := t.Txn.Commit()
	if err == nil && t.put && resp.Succeeded && t.kv.done.CompareAndSwap(false, true) {
		t.kv.cancel()
		return nil, context.Canceled
	}
	return resp, err
}

// TestRegisterCancelledAfterPutLeavesNoKey: a Register whose context ends
// after etcd applied its put revokes the lease with a context of its own,
// so no ghost session stays for a TTL.
func TestRegisterCancelledAfterPutLeavesNoKey(t *testing.T) {
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoint())
	cfg := regConfig(10 * time.Second)
	s := regSession("querynode", "10.0.0.1:1", false)
	s.ServerID = 42
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli.KV = &cancelAfterPutKV{KV: cli.KV, key: cfg.Key("querynode", 42), cancel: cancel}
	_, err := session.Register(ctx, cli, s, cfg)
	require.Error(t, err)
	require.Nil(t, regGet(t, m.Client, cfg.Key("querynode", 42)), "a failed Register left its key")
}

// slowTxnKV delays every transaction by d, as a slow etcd would.
type slowTxnKV struct {
	clientv3.KV
	d time.Duration
}

func (k *slowTxnKV) Txn(ctx context.Context) clientv3.Txn {
	return &slowTxn{Txn: k.KV.Txn(ctx), d: k.d}
}

type slowTxn struct {
	clientv3.Txn
	d time.Duration
}

func (t *slowTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.Txn = t.Txn.If(cs...); return t }
func (t *slowTxn) Then(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(ops...); return t }
func (t *slowTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }
func (t *slowTxn) Commit() (*clientv3.TxnResponse, error) {
	time.Sleep(t.d) // the slowness under test, not a synchronisation
	return t.Txn.Commit()
}

// TestKeepAliveRunsFromTheGrant: on a slow etcd the steps between the grant
// and the put of the session (claims, stale replacement) can outlast the
// TTL; the lease is kept alive from the grant, so one grant is enough.
func TestKeepAliveRunsFromTheGrant(t *testing.T) {
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoint())
	g := newGatedLease(cli.Lease)
	cli.Lease = g
	cli.KV = &slowTxnKV{KV: cli.KV, d: 2500 * time.Millisecond}
	cfg := regConfig(2 * time.Second)
	cfg.RequestTimeout = 5 * time.Second
	s := regSession("querynode", "10.0.0.1:1", false)
	s.ServerID = 7
	r := regMust(t, cli, s, cfg)
	require.Equal(t, int32(1), g.grants.Load(), "one grant: the lease outlived the slow put")
	_, kv := regRecord(t, m.Client, cfg.Key("querynode", 7))
	require.Equal(t, r.Session().LeaseID, kv.Lease)
}

// TestReregistrationFailuresAreCountedLoggedAndExposed: every failed
// attempt to register again is counted, the first is logged, and the cause
// is LastError until the registration succeeds.
func TestReregistrationFailuresAreCountedLoggedAndExposed(t *testing.T) {
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoint())
	g := newGatedLease(cli.Lease)
	cli.Lease = g
	cfg := regConfig(6 * time.Second)
	metrics := regMetrics(t)
	core, logs := observer.New(zapcore.InfoLevel)
	r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", false), cfg,
		session.WithMetrics(metrics), session.WithLogger(zap.New(core)))
	g.failGrant.Store(3)
	_, err := m.Client.Revoke(regCtx(t), clientv3.LeaseID(r.Session().LeaseID))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return r.State() == session.StateReregistering && r.LastError() != nil },
		5*time.Second, 5*time.Millisecond, "LastError while registering again")
	regState(t, r, session.StateConnected, 10*time.Second)
	require.NoError(t, r.LastError())
	require.Equal(t, 3.0, regCount(t, metrics.ReregisterFails, "querynode"))
	require.NotZero(t, logs.FilterMessage("registering again failed; retrying").Len())
}

// silentWatcher hands out watches that never deliver, as a watch on a
// partitioned etcd member would.
type silentWatcher struct{ clientv3.Watcher }

func (silentWatcher) Watch(ctx context.Context, _ string, _ ...clientv3.OpOption) clientv3.WatchChan {
	ch := make(chan clientv3.WatchResponse)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}

// TestStandbyRereadsTheActiveKeyEveryTTL: a standby whose watch of the
// active key went silent still takes over, by reading the key again at
// least once a TTL.
func TestStandbyRereadsTheActiveKeyEveryTTL(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	active := regMust(t, m.Client, regSession("rootcoord", "10.0.0.1:1", true), cfg)
	cli := etcdtest.NewClient(t, m.Endpoint())
	cli.Watcher = silentWatcher{cli.Watcher}
	standby := regMust(t, cli, regSession("rootcoord", "10.0.0.2:1", true), cfg)
	require.True(t, active.IsActive())
	require.False(t, standby.IsActive())
	require.NoError(t, active.Close(regCtx(t)))
	require.Eventually(t, standby.IsActive, cfg.TTL+2*time.Second, 10*time.Millisecond,
		"the standby took over without a working watch")
}
