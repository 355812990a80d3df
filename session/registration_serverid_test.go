package session_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

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

// countingKV counts the requests made through a client's KV, and the
// transactions etcd refused because their lease did not exist (yet).
type countingKV struct {
	clientv3.KV
	gets, txns, puts, noLease atomic.Int32
	// noLeaseSeen, when set, is closed at the first such refusal.
	noLeaseSeen chan struct{}
	once        sync.Once
	// committed, when set, is closed once commitsBefore transactions
	// have returned.
	committed     chan struct{}
	commitsBefore int32
	commits       atomic.Int32
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
	return countingTxn{Txn: k.KV.Txn(ctx), k: k}
}

// countingTxn is a transaction of countingKV.
type countingTxn struct {
	clientv3.Txn
	k *countingKV
}

func (t countingTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	return countingTxn{Txn: t.Txn.If(cs...), k: t.k}
}

func (t countingTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	return countingTxn{Txn: t.Txn.Then(ops...), k: t.k}
}

func (t countingTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	return countingTxn{Txn: t.Txn.Else(ops...), k: t.k}
}

func (t countingTxn) Commit() (*clientv3.TxnResponse, error) {
	resp, err := t.Txn.Commit()
	if t.k.committed != nil && t.k.commits.Add(1) == t.k.commitsBefore {
		close(t.k.committed)
	}
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.k.noLease.Add(1)
		if t.k.noLeaseSeen != nil {
			t.k.once.Do(func() { close(t.k.noLeaseSeen) })
		}
	}
	return resp, err
}

// A first registration without a ServerID makes three requests: the
// grant, in parallel with the read of the counter, and one transaction
// that swaps the counter, puts the session and reads the role's sessions,
// sent without waiting for the grant. Only a swap that reached etcd
// before the grant is sent again.
func TestServerIDTakenByTheTransactionThatPutsTheSession(t *testing.T) {
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoint())
	kv := &countingKV{KV: cli.KV}
	cli.KV = kv
	var grants atomic.Int32
	countGrants := session.WithGrant(func(ctx context.Context, req *pb.LeaseGrantRequest, grant func(context.Context, *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)) (*pb.LeaseGrantResponse, error) {
		grants.Add(1)
		return grant(ctx, req)
	})
	cfg := regConfig(2 * time.Second)
	for i, want := range []int64{1, 2} { // counter missing, then present
		r := regMust(t, cli, regSession("querynode", fmt.Sprintf("10.0.0.%d:1", i+1), false), cfg, countGrants)
		require.Equal(t, want, r.Session().ServerID)
		require.Equal(t, fmt.Sprint(want+1), string(regGet(t, m.Client, cfg.IDKey()).Value))
		s, stored := regRecord(t, m.Client, cfg.Key("querynode", want))
		require.Equal(t, want, s.ServerID)
		require.Equal(t, r.Session().LeaseID, stored.Lease)
	}
	require.Equal(t, int32(2), grants.Load(), "one grant per registration")
	require.LessOrEqual(t, kv.noLease.Load(), int32(2), "a swap is sent again at most once per registration")
	require.Equal(t, 2+kv.noLease.Load(), kv.txns.Load(), "one transaction per registration, and a swap sent again")
	require.Equal(t, int32(2), kv.gets.Load(), "one read per registration")
	require.Zero(t, kv.puts.Load(), "no other request")
	leases, err := m.Client.Leases(regCtx(t))
	require.NoError(t, err)
	require.Len(t, leases.Leases, 2, "no lease besides the two registrations'")
}

// A swap that reaches etcd before its lease's grant fails whole and is
// sent again, by the same attempt, once the grant is back: the
// registration succeeds with the ID it read, under the one lease it
// chose, and the counter moved once.
func TestServerIDSwapBeforeGrantIsSentAgain(t *testing.T) {
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoint())
	kv := &countingKV{KV: cli.KV, noLeaseSeen: make(chan struct{})}
	cli.KV = kv
	late := session.WithGrant(func(ctx context.Context, req *pb.LeaseGrantRequest, grant func(context.Context, *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)) (*pb.LeaseGrantResponse, error) {
		select { // the grant leaves once the swap was refused
		case <-kv.noLeaseSeen:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return grant(ctx, req)
	})
	var chosen atomic.Int64
	ids := session.WithLeaseIDs(func() int64 { return 1<<40 + chosen.Add(1) })
	cfg := regConfig(2 * time.Second)
	r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", false), cfg, late, ids)
	require.Equal(t, int64(1), chosen.Load(), "the same attempt, under the same lease, sent the swap again")
	require.Equal(t, int64(1<<40+1), r.Session().LeaseID)
	require.Equal(t, int64(1), r.Session().ServerID)
	require.Equal(t, int32(1), kv.noLease.Load(), "the swap was refused once")
	require.Equal(t, int32(2), kv.txns.Load(), "the refused swap and the swap")
	require.Equal(t, "2", string(regGet(t, m.Client, cfg.IDKey()).Value), "the counter moved once")
	_, stored := regRecord(t, m.Client, cfg.Key("querynode", 1))
	require.Equal(t, r.Session().LeaseID, stored.Lease)
	require.NoError(t, r.Close(regCtx(t)))
	require.Nil(t, regGet(t, m.Client, cfg.Key("querynode", 1)), "the key went with the lease")
}

// A lease ID chosen at random that is another process's lease fails the
// grant, after the swap, sent first, put the session on that lease. The
// registration then deletes that key, leaves the other process's lease
// alone, and registers under a lease of its own with the next ID.
func TestServerIDLeaseChosenThatIsTakenIsNotUsed(t *testing.T) {
	m := etcdtest.Start(t)
	other, err := m.Client.Grant(regCtx(t), 60)
	require.NoError(t, err)
	cli := etcdtest.NewClient(t, m.Endpoint())
	kv := &countingKV{KV: cli.KV, committed: make(chan struct{}), commitsBefore: 1}
	cli.KV = kv
	var chosen atomic.Int32
	ids := session.WithLeaseIDs(func() int64 {
		if chosen.Add(1) == 1 {
			return int64(other.ID)
		}
		return int64(other.ID) + 1
	})
	late := session.WithGrant(func(ctx context.Context, req *pb.LeaseGrantRequest, grant func(context.Context, *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)) (*pb.LeaseGrantResponse, error) {
		if req.ID == int64(other.ID) {
			select { // the taken ID's grant leaves after the swap
			case <-kv.committed:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return grant(ctx, req)
	})
	cfg := regConfig(2 * time.Second)
	r := regMust(t, cli, regSession("querynode", "10.0.0.1:1", false), cfg, ids, late)
	require.Equal(t, int32(2), chosen.Load(), "a second lease was chosen")
	require.Equal(t, int64(other.ID)+1, r.Session().LeaseID)
	require.Equal(t, int64(2), r.Session().ServerID, "ID 1 was spent by the swap under the other lease")
	require.Nil(t, regGet(t, m.Client, cfg.Key("querynode", 1)), "the session put under the other lease is deleted")
	_, stored := regRecord(t, m.Client, cfg.Key("querynode", 2))
	require.Equal(t, r.Session().LeaseID, stored.Lease)
	ttl, err := m.Client.TimeToLive(regCtx(t), other.ID, clientv3.WithAttachedKeys())
	require.NoError(t, err)
	require.Positive(t, ttl.TTL, "the other process's lease is not revoked")
	require.Empty(t, ttl.Keys, "nothing of the registration is left on the other process's lease")
}

// The grant of a new registration's lease is handed to the connection
// before the counter's read, from the same goroutine, so that it reaches
// etcd first and the swap, sent after the read's round trip, finds the
// lease. Sent from a goroutine of its own, it left after the read in
// most registrations.
func TestServerIDGrantLeavesBeforeTheCounterRead(t *testing.T) {
	m := etcdtest.Start(t)
	var (
		mu            sync.Mutex
		grants, reads int
		late          []int // the registrations whose read left before their grant
	)
	const grantMethod, readMethod = "/etcdserverpb.Lease/LeaseGrant", "/etcdserverpb.KV/Range"
	note := func(method string) {
		mu.Lock()
		defer mu.Unlock()
		switch method {
		case grantMethod:
			grants++
		case readMethod:
			reads++
			if grants < reads {
				late = append(late, reads)
			}
		}
	}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		note(method) // a unary call is handed over as it begins
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &notedStream{ClientStream: cs, sent: func() { note(method) }}, nil
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.Endpoint()},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })

	cfg := regConfig(2 * time.Second)
	const n = 20
	for i := range n {
		regMust(t, cli, regSession("querynode", fmt.Sprintf("10.0.0.%d:1", i+1), false), cfg)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, n, grants, "one grant per registration")
	require.Equal(t, n, reads, "one read per registration")
	require.Empty(t, late, "registrations whose counter read left before their grant")
}

// notedStream calls sent once its message is handed to the connection.
type notedStream struct {
	grpc.ClientStream
	sent func()
}

func (s *notedStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	s.sent()
	return err
}
