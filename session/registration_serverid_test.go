package session_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

func TestServerIDCounterIsCreatedWhenMissing(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	require.Nil(t, regGet(t, m.Client, cfg.IDKey()))

	a := regMust(t, m.Client, regSession("querynode", "10.0.0.1:1", false), cfg)
	require.Equal(t, int64(1), a.Session().ServerID)
	require.Equal(t, "2", string(regGet(t, m.Client, cfg.IDKey()).Value), "the counter holds the next ID, in decimal")

	b := regMust(t, m.Client, regSession("datanode", "10.0.0.2:1", false), cfg)
	require.Equal(t, int64(2), b.Session().ServerID, "the counter is shared by every role")
	require.Equal(t, "3", string(regGet(t, m.Client, cfg.IDKey()).Value))
}

func TestServerIDGivenIsUsedWithoutAllocation(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	s := regSession("querynode", "10.0.0.1:1", false)
	s.ServerID = 42
	r := regMust(t, m.Client, s, cfg)
	require.Equal(t, int64(42), r.Session().ServerID)
	require.NotNil(t, regGet(t, m.Client, cfg.Key("querynode", 42)))
	require.Nil(t, regGet(t, m.Client, cfg.IDKey()), "the counter is not touched")
}

func TestServerIDsAreUniqueUnderConcurrentRegistrations(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(5 * time.Second)
	const n = 50
	regs := make([]*session.Registration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			regs[i], errs[i] = session.Register(regCtx(t), m.Client,
				regSession("querynode", fmt.Sprintf("10.0.1.%d:1", i), false), cfg)
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range n {
		require.NoError(t, errs[i])
		id := regs[i].Session().ServerID
		require.False(t, seen[id], "ServerID %d allocated twice", id)
		require.True(t, id >= 1 && id <= n, "ServerID %d out of 1..%d", id, n)
		seen[id] = true
	}
	require.Equal(t, fmt.Sprint(n+1), string(regGet(t, m.Client, cfg.IDKey()).Value))
	require.Equal(t, int64(n), regKeys(t, m.Client, cfg.RolePrefix("querynode")))
	for i, r := range regs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.Close(regCtx(t)) }()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, regKeys(t, m.Client, cfg.RolePrefix("querynode")))
}

func TestServerIDAllocationReturnsWhenContextEnds(t *testing.T) {
	m := etcdtest.Start(t)
	px := etcdtest.NewProxy(t, m.Endpoint())
	cli := etcdtest.NewClient(t, px.Addr())
	px.Cut(t)
	cfg := regConfig(2 * time.Second)
	cfg.Retry.Attempts = 0 // only the context bounds it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := session.Register(ctx, cli, regSession("querynode", "10.0.0.1:1", false), cfg)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Register returned before the context ended: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		t.Logf("Register returned %s after cancel", time.Since(start))
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "ServerID")
	case <-time.After(time.Second):
		t.Fatal("Register did not return within 1s of cancel")
	}
	px.Restore(t)
	require.Nil(t, regGet(t, m.Client, cfg.IDKey()))
}

func TestServerIDMalformedCounterFailsAtOnce(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	_, err := m.Client.Put(regCtx(t), cfg.IDKey(), "not-a-number")
	require.NoError(t, err)
	start := time.Now()
	_, err = session.Register(regCtx(t), m.Client, regSession("querynode", "10.0.0.1:1", false), cfg)
	require.ErrorContains(t, err, "ServerID counter")
	require.ErrorContains(t, err, "not-a-number")
	require.Less(t, time.Since(start), time.Second, "not retried")
}

// countingKV counts the requests made through a client's KV.
type countingKV struct {
	clientv3.KV
	gets, txns, puts atomic.Int32
}

func (k *countingKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	k.gets.Add(1)
	return k.KV.Get(ctx, key, opts...)
}

func (k *countingKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	k.puts.Add(1)
	return k.KV.Put(ctx, key, val, opts...)
}

func (k *countingKV) Txn(ctx context.Context) clientv3.Txn {
	k.txns.Add(1)
	return k.KV.Txn(ctx)
}

// A first registration without a ServerID makes three requests: the
// grant, the read of the counter and of the role's sessions (one
// transaction, in parallel with the grant), and one transaction that
// swaps the counter and puts the session.
func TestServerIDTakenByTheTransactionThatPutsTheSession(t *testing.T) {
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoint())
	kv := &countingKV{KV: cli.KV}
	cli.KV = kv
	g := newGatedLease(cli.Lease)
	cli.Lease = g
	cfg := regConfig(2 * time.Second)
	for i, want := range []int64{1, 2} { // counter missing, then present
		r := regMust(t, cli, regSession("querynode", fmt.Sprintf("10.0.0.%d:1", i+1), false), cfg)
		require.Equal(t, want, r.Session().ServerID)
		require.Equal(t, fmt.Sprint(want+1), string(regGet(t, m.Client, cfg.IDKey()).Value))
		s, stored := regRecord(t, m.Client, cfg.Key("querynode", want))
		require.Equal(t, want, s.ServerID)
		require.Equal(t, r.Session().LeaseID, stored.Lease)
	}
	require.Equal(t, int32(2), g.grants.Load(), "one grant per registration")
	require.Equal(t, int32(4), kv.txns.Load(), "two transactions per registration")
	require.Zero(t, kv.gets.Load()+kv.puts.Load(), "no other request")
}

// An ID whose key is taken (a process registered with that ServerID
// given) is skipped: the counter moves past it and the session takes the
// next.
func TestServerIDTakenKeyIsSkipped(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	given := regSession("querynode", "10.0.0.9:1", false)
	given.ServerID = 1
	regMust(t, m.Client, given, cfg)
	r := regMust(t, m.Client, regSession("querynode", "10.0.0.1:1", false), cfg)
	require.Equal(t, int64(2), r.Session().ServerID)
	require.Equal(t, "3", string(regGet(t, m.Client, cfg.IDKey()).Value))
	s, _ := regRecord(t, m.Client, cfg.Key("querynode", 1))
	require.Equal(t, "10.0.0.9:1", s.Address, "the given ID's session is untouched")
}
