package identity_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const identityTestTimeout = 10 * time.Second

// identityServer is a real gRPC server with the health service behind the
// identity server interceptors.
type identityServer struct {
	addr string
	stop func()
}

func startIdentityServer(t *testing.T, lis net.Listener, self session.Session) *identityServer {
	t.Helper()
	selfFn := func() session.Session { return self }
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(identity.UnaryServerInterceptor(selfFn)),
		grpc.StreamInterceptor(identity.StreamServerInterceptor(selfFn)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = srv.Serve(lis)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Stop()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return &identityServer{addr: lis.Addr().String(), stop: stop}
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var lis net.Listener
	require.Eventually(t, func() bool {
		var err error
		lis, err = net.Listen("tcp", addr)
		return err == nil
	}, identityTestTimeout, 10*time.Millisecond, "listen on %s", addr)
	return lis
}

// dialIdentity dials addr; with a non-nil target every call carries its
// identity through the client interceptors.
func dialIdentity(t *testing.T, addr string, target *session.Session) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}),
	}
	if target != nil {
		s := *target
		tg := identity.NewTarget(s)
		fn := func() *identity.Target { return tg }
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(identity.UnaryClientInterceptor(fn)),
			grpc.WithChainStreamInterceptor(identity.StreamClientInterceptor(fn)))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// check makes one health Check and one Watch (first message) and returns
// both errors.
func check(ctx context.Context, cc grpc.ClientConnInterface) (unaryErr, streamErr error) {
	hc := healthpb.NewHealthClient(cc)
	_, unaryErr = hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := hc.Watch(wctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return unaryErr, err
	}
	_, streamErr = w.Recv()
	return unaryErr, streamErr
}

func requireMismatch(t *testing.T, err error, expected, actual session.Session) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	require.True(t, identity.IsMismatch(err), "%v", err)
	info, ok := identity.MismatchInfo(err)
	require.True(t, ok)
	require.Equal(t, map[string]string{
		identity.MismatchExpectedServerID:    fmt.Sprint(expected.ServerID),
		identity.MismatchExpectedLeaseID:     fmt.Sprint(expected.LeaseID),
		identity.MismatchExpectedIncarnation: expected.Incarnation,
		identity.MismatchActualServerID:      fmt.Sprint(actual.ServerID),
		identity.MismatchActualLeaseID:       fmt.Sprint(actual.LeaseID),
		identity.MismatchActualIncarnation:   actual.Incarnation,
	}, info.GetMetadata())
}

func TestIdentityOverGRPC(t *testing.T) {
	self := session.Session{ServerID: 1, LeaseID: 10, ServerName: "querynode"}
	srv := startIdentityServer(t, listen(t, "127.0.0.1:0"), self)

	cases := []struct {
		name     string
		target   *session.Session // identity sent by the client interceptors; nil: none
		md       []string         // raw metadata pairs added to the call
		wantCode codes.Code
		mismatch bool
	}{
		{name: "matching identity", target: &session.Session{ServerID: 1, LeaseID: 10}, wantCode: codes.OK},
		{name: "other ServerID", target: &session.Session{ServerID: 2, LeaseID: 10},
			wantCode: codes.FailedPrecondition, mismatch: true},
		{name: "other LeaseID", target: &session.Session{ServerID: 1, LeaseID: 11},
			wantCode: codes.FailedPrecondition, mismatch: true},
		{name: "no identity", wantCode: codes.OK},
		{name: "unrelated metadata only", md: []string{"x-trace", "abc"}, wantCode: codes.OK},
		{name: "malformed ServerID",
			md: []string{identity.MetadataServerID, "one", identity.MetadataLeaseID, "10"}, wantCode: codes.InvalidArgument},
		{name: "malformed LeaseID",
			md: []string{identity.MetadataServerID, "1", identity.MetadataLeaseID, "1e3"}, wantCode: codes.InvalidArgument},
		{name: "LeaseID missing", md: []string{identity.MetadataServerID, "1"}, wantCode: codes.InvalidArgument},
		{name: "ServerID repeated",
			md:       []string{identity.MetadataServerID, "1", identity.MetadataServerID, "1", identity.MetadataLeaseID, "10"},
			wantCode: codes.InvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), identityTestTimeout)
			defer cancel()
			if len(tc.md) > 0 {
				ctx = metadata.AppendToOutgoingContext(ctx, tc.md...)
			}
			cc := dialIdentity(t, srv.addr, tc.target)
			unaryErr, streamErr := check(ctx, cc)
			for kind, err := range map[string]error{"unary": unaryErr, "stream": streamErr} {
				require.Equal(t, tc.wantCode, status.Code(err), "%s: %v", kind, err)
				require.Equal(t, tc.mismatch, identity.IsMismatch(err), "%s: %v", kind, err)
				if tc.mismatch {
					requireMismatch(t, err, *tc.target, self)
				}
			}
		})
	}
}

// A process that re-registered under a new lease after losing its old one
// is the same process: ServerID and Incarnation identify it, so calls still
// addressed with the old LeaseID are served, and a call for another
// incarnation is rejected even when the LeaseIDs happen to be equal. Records
// without an Incarnation (written by Milvus) fall back to the LeaseID.
func TestIdentityAcceptsOldLeaseOfSameIncarnation(t *testing.T) {
	self := session.Session{ServerID: 1, Incarnation: "inc-a", LeaseID: 11} // re-registered: lease 10 was lost
	srv := startIdentityServer(t, listen(t, "127.0.0.1:0"), self)
	cases := []struct {
		name     string
		target   session.Session
		mismatch bool
	}{
		{"same incarnation, current lease", session.Session{ServerID: 1, Incarnation: "inc-a", LeaseID: 11}, false},
		{"same incarnation, old lease", session.Session{ServerID: 1, Incarnation: "inc-a", LeaseID: 10}, false},
		{"other incarnation, same lease", session.Session{ServerID: 1, Incarnation: "inc-b", LeaseID: 11}, true},
		{"same incarnation, other server", session.Session{ServerID: 2, Incarnation: "inc-a", LeaseID: 11}, true},
		{"no incarnation, current lease", session.Session{ServerID: 1, LeaseID: 11}, false},
		{"no incarnation, old lease", session.Session{ServerID: 1, LeaseID: 10}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), identityTestTimeout)
			defer cancel()
			unaryErr, streamErr := check(ctx, dialIdentity(t, srv.addr, &tc.target))
			for kind, err := range map[string]error{"unary": unaryErr, "stream": streamErr} {
				if !tc.mismatch {
					require.NoError(t, err, kind)
					continue
				}
				requireMismatch(t, err, tc.target, self)
			}
		})
	}
}

// A process restarted on the same address is a new process: calls
// addressed to the old one must be rejected, not served.
func TestIdentitySameAddressNewProcess(t *testing.T) {
	oldSelf := session.Session{ServerID: 1, LeaseID: 100}
	newSelf := session.Session{ServerID: 2, LeaseID: 200}
	a := startIdentityServer(t, listen(t, "127.0.0.1:0"), oldSelf)
	addr := a.addr

	ctx, cancel := context.WithTimeout(context.Background(), identityTestTimeout)
	defer cancel()
	oldClient := dialIdentity(t, addr, &oldSelf)
	u, s := check(ctx, oldClient)
	require.NoError(t, u)
	require.NoError(t, s)

	a.stop()
	// Let the client notice that A went away, so the next call is not
	// written to A's dead transport.
	for st := oldClient.GetState(); st == connectivity.Ready; st = oldClient.GetState() {
		require.True(t, oldClient.WaitForStateChange(ctx, st))
	}
	b := startIdentityServer(t, listen(t, addr), newSelf)
	require.Equal(t, addr, b.addr)

	u, s = check(ctx, oldClient)
	requireMismatch(t, u, oldSelf, newSelf)
	requireMismatch(t, s, oldSelf, newSelf)

	newClient := dialIdentity(t, addr, &newSelf)
	u, s = check(ctx, newClient)
	require.NoError(t, u)
	require.NoError(t, s)
}

func TestCheck(t *testing.T) {
	self := session.Session{ServerID: 7, LeaseID: 70}
	const sid, lid, inc = identity.MetadataServerID, identity.MetadataLeaseID, identity.MetadataIncarnation
	cases := []struct {
		name     string
		self     *session.Session // nil: self
		md       metadata.MD      // incoming; nil: no metadata at all
		wantCode codes.Code
	}{
		{name: "no metadata", wantCode: codes.OK},
		{name: "no identity", md: metadata.Pairs("a", "b"), wantCode: codes.OK},
		{name: "match", md: metadata.Pairs(identity.MetadataServerID, "7", identity.MetadataLeaseID, "70"), wantCode: codes.OK},
		{name: "server differs", md: metadata.Pairs(identity.MetadataServerID, "8", identity.MetadataLeaseID, "70"),
			wantCode: codes.FailedPrecondition},
		{name: "lease differs", md: metadata.Pairs(identity.MetadataServerID, "7", identity.MetadataLeaseID, "71"),
			wantCode: codes.FailedPrecondition},
		{name: "both differ", md: metadata.Pairs(identity.MetadataServerID, "-1", identity.MetadataLeaseID, "0"),
			wantCode: codes.FailedPrecondition},
		{name: "empty value", md: metadata.Pairs(identity.MetadataServerID, "", identity.MetadataLeaseID, "70"),
			wantCode: codes.InvalidArgument},
		{name: "overflow", md: metadata.Pairs(identity.MetadataServerID, "99999999999999999999", identity.MetadataLeaseID, "70"),
			wantCode: codes.InvalidArgument},
		{name: "server id missing", md: metadata.Pairs(identity.MetadataLeaseID, "70"), wantCode: codes.InvalidArgument},

		// With incarnations on both sides the LeaseID does not matter.
		{name: "same incarnation, old lease", self: &session.Session{ServerID: 7, LeaseID: 71, Incarnation: "a"},
			md: metadata.Pairs(sid, "7", lid, "70", inc, "a"), wantCode: codes.OK},
		{name: "other incarnation, same lease", self: &session.Session{ServerID: 7, LeaseID: 70, Incarnation: "a"},
			md: metadata.Pairs(sid, "7", lid, "70", inc, "b"), wantCode: codes.FailedPrecondition},
		{name: "same incarnation, other server", self: &session.Session{ServerID: 7, LeaseID: 70, Incarnation: "a"},
			md: metadata.Pairs(sid, "8", lid, "70", inc, "a"), wantCode: codes.FailedPrecondition},
		// Without one on either side (Milvus records), the LeaseID decides.
		{name: "caller without incarnation, same lease", self: &session.Session{ServerID: 7, LeaseID: 70, Incarnation: "a"},
			md: metadata.Pairs(sid, "7", lid, "70"), wantCode: codes.OK},
		{name: "caller without incarnation, old lease", self: &session.Session{ServerID: 7, LeaseID: 71, Incarnation: "a"},
			md: metadata.Pairs(sid, "7", lid, "70"), wantCode: codes.FailedPrecondition},
		{name: "self without incarnation, same lease", md: metadata.Pairs(sid, "7", lid, "70", inc, "a"), wantCode: codes.OK},
		{name: "self without incarnation, old lease", md: metadata.Pairs(sid, "7", lid, "69", inc, "a"),
			wantCode: codes.FailedPrecondition},
		// Malformed incarnations.
		{name: "incarnation repeated", md: metadata.Pairs(sid, "7", lid, "70", inc, "a", inc, "a"), wantCode: codes.InvalidArgument},
		{name: "incarnation empty", md: metadata.Pairs(sid, "7", lid, "70", inc, ""), wantCode: codes.InvalidArgument},
		{name: "incarnation alone", md: metadata.Pairs(inc, "a"), wantCode: codes.InvalidArgument},
		{name: "incarnation without lease", md: metadata.Pairs(sid, "7", inc, "a"), wantCode: codes.InvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.md != nil {
				ctx = metadata.NewIncomingContext(ctx, tc.md)
			}
			me := self
			if tc.self != nil {
				me = *tc.self
			}
			err := identity.Check(ctx, me)
			require.Equal(t, tc.wantCode, status.Code(err), "%v", err)
			require.Equal(t, tc.wantCode == codes.FailedPrecondition, identity.IsMismatch(err))
		})
	}
}

func TestIdentityServerInterceptorReadsSelfLazily(t *testing.T) {
	calls := 0
	self := func() session.Session { calls++; return session.Session{ServerID: 3, LeaseID: 30} }
	icpt := identity.UnaryServerInterceptor(self)
	handled := 0
	handler := func(context.Context, any) (any, error) { handled++; return "ok", nil }

	_, err := icpt(context.Background(), nil, &grpc.UnaryServerInfo{}, handler)
	require.NoError(t, err)
	require.Equal(t, 0, calls, "self read for a call without identity")
	require.Equal(t, 1, handled)

	ctx := metadata.NewIncomingContext(context.Background(),
		metadata.Pairs(identity.MetadataServerID, "3", identity.MetadataLeaseID, "31"))
	_, err = icpt(ctx, nil, &grpc.UnaryServerInfo{}, handler)
	require.True(t, identity.IsMismatch(err))
	require.Equal(t, 1, calls)
	require.Equal(t, 1, handled, "handler ran for a mismatched call")

	// Without a self every addressed call is rejected, even one for the
	// zero identity.
	_, err = identity.UnaryServerInterceptor(nil)(ctx, nil, &grpc.UnaryServerInfo{}, handler)
	require.True(t, identity.IsMismatch(err))
	zero := metadata.NewIncomingContext(context.Background(),
		metadata.Pairs(identity.MetadataServerID, "0", identity.MetadataLeaseID, "0"))
	_, err = identity.UnaryServerInterceptor(nil)(zero, nil, &grpc.UnaryServerInfo{}, handler)
	require.True(t, identity.IsMismatch(err))
}

func TestOutgoingReplaces(t *testing.T) {
	ctx := metadata.AppendToOutgoingContext(context.Background(), "keep", "me")
	ctx = identity.Outgoing(ctx, session.Session{ServerID: 1, LeaseID: 2})
	ctx = identity.Outgoing(ctx, session.Session{ServerID: 3, LeaseID: 4})
	md, ok := metadata.FromOutgoingContext(ctx)
	require.True(t, ok)
	require.Equal(t, []string{"3"}, md.Get(identity.MetadataServerID))
	require.Equal(t, []string{"4"}, md.Get(identity.MetadataLeaseID))
	require.Equal(t, []string{"me"}, md.Get("keep"))

	in := metadata.NewIncomingContext(context.Background(), md)
	require.NoError(t, identity.Check(in, session.Session{ServerID: 3, LeaseID: 4}))

	// An incarnation is added, replaced, and dropped for a target without one.
	ctx = identity.Outgoing(ctx, session.Session{ServerID: 5, LeaseID: 6, Incarnation: "a"})
	ctx = identity.Outgoing(ctx, session.Session{ServerID: 5, LeaseID: 6, Incarnation: "b"})
	md, _ = metadata.FromOutgoingContext(ctx)
	require.Equal(t, []string{"b"}, md.Get(identity.MetadataIncarnation))
	ctx = identity.Outgoing(ctx, session.Session{ServerID: 5, LeaseID: 6})
	md, _ = metadata.FromOutgoingContext(ctx)
	require.Empty(t, md.Get(identity.MetadataIncarnation))
	require.Equal(t, []string{"5"}, md.Get(identity.MetadataServerID))
	fresh := identity.Outgoing(context.Background(), session.Session{ServerID: 5, LeaseID: 6, Incarnation: "c"})
	md, _ = metadata.FromOutgoingContext(fresh)
	require.Equal(t, []string{"c"}, md.Get(identity.MetadataIncarnation))
}

type statusCarrier struct{ st *status.Status }

func (e statusCarrier) Error() string              { return e.st.Message() }
func (e statusCarrier) GRPCStatus() *status.Status { return e.st }

func TestIsMismatch(t *testing.T) {
	in := metadata.NewIncomingContext(context.Background(),
		metadata.Pairs(identity.MetadataServerID, "1", identity.MetadataLeaseID, "1"))
	mismatch := identity.Check(in, session.Session{ServerID: 2, LeaseID: 2})
	require.Error(t, mismatch)

	withInfo := func(code codes.Code, reason, domain string) error {
		st, err := status.New(code, "x").WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: domain})
		require.NoError(t, err)
		return st.Err()
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"the mismatch status", mismatch, true},
		{"wrapped with cockroachdb errors", errors.Wrap(mismatch, "call"), true},
		{"wrapped with fmt", fmt.Errorf("call: %w", mismatch), true},
		{"joined", errors.Join(errors.New("other"), mismatch), true},
		{"custom GRPCStatus carrier", statusCarrier{status.Convert(mismatch)}, true},
		{"message only", errors.New(mismatch.Error()), false},
		{"code without detail", status.Error(codes.FailedPrecondition, "IDENTITY_MISMATCH"), false},
		{"other reason", withInfo(codes.FailedPrecondition, "OTHER", identity.ErrorDomain), false},
		{"other domain", withInfo(codes.FailedPrecondition, identity.MismatchReason, "example.com"), false},
		{"other code", withInfo(codes.Unavailable, identity.MismatchReason, identity.ErrorDomain), false},
		{"unavailable", status.Error(codes.Unavailable, "down"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, identity.IsMismatch(tc.err))
		})
	}
}

// Target.Outgoing runs on every call made through a Client.
func BenchmarkOutgoing(b *testing.B) {
	tg := identity.NewTarget(session.Session{ServerID: 12, LeaseID: 7587888888888888, Incarnation: "9f86d081884c7d65"})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-trace", "abc")
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = tg.Outgoing(ctx, "r")
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = tg.Outgoing(ctx, "r")
			}
		})
	})
}

// Check runs on every call a server with the interceptors serves.
func BenchmarkCheck(b *testing.B) {
	self := session.Session{ServerID: 12, LeaseID: 7587888888888888}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		identity.MetadataServerID, "12", identity.MetadataLeaseID, "7587888888888888",
		"user-agent", "grpc-go", "content-type", "application/grpc"))
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := identity.Check(ctx, self); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := identity.Check(ctx, self); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// A Target sends the identity it was made with, and a request ID only
// when the context carries none.
func TestTargetOutgoingRequestID(t *testing.T) {
	tg := identity.NewTarget(session.Session{ServerID: 5, LeaseID: 6, Incarnation: "a"})
	md, _ := metadata.FromOutgoingContext(tg.Outgoing(context.Background(), "r1"))
	require.Equal(t, metadata.Pairs(identity.MetadataServerID, "5", identity.MetadataLeaseID, "6",
		identity.MetadataIncarnation, "a", identity.MetadataRequestID, "r1"), md)

	md, _ = metadata.FromOutgoingContext(tg.Outgoing(context.Background(), ""))
	require.Equal(t, metadata.Pairs(identity.MetadataServerID, "5", identity.MetadataLeaseID, "6",
		identity.MetadataIncarnation, "a"), md, "no ID, no key")
	md, _ = metadata.FromOutgoingContext(tg.Outgoing(context.Background(), ""))
	md.Set(identity.MetadataServerID, "changed")
	md, _ = metadata.FromOutgoingContext(tg.Outgoing(context.Background(), ""))
	require.Equal(t, []string{"5"}, md.Get(identity.MetadataServerID), "the shared identity is not changed through a copy")

	// The caller's own metadata is kept.
	user := metadata.AppendToOutgoingContext(context.Background(), "x-trace", "t")
	md, _ = metadata.FromOutgoingContext(tg.Outgoing(user, ""))
	require.Equal(t, metadata.Pairs("x-trace", "t", identity.MetadataServerID, "5", identity.MetadataLeaseID, "6",
		identity.MetadataIncarnation, "a"), md)

	pre := metadata.AppendToOutgoingContext(context.Background(), identity.MetadataRequestID, "caller")
	md, _ = metadata.FromOutgoingContext(tg.Outgoing(pre, "r2"))
	require.Equal(t, []string{"caller"}, md.Get(identity.MetadataRequestID), "the caller's own is kept")

	// Over an identity already there: replaced, the request ID added once.
	other := identity.Outgoing(context.Background(), session.Session{ServerID: 9, LeaseID: 9, Incarnation: "z"})
	md, _ = metadata.FromOutgoingContext(tg.Outgoing(other, "r3"))
	require.Equal(t, metadata.Pairs(identity.MetadataServerID, "5", identity.MetadataLeaseID, "6",
		identity.MetadataIncarnation, "a", identity.MetadataRequestID, "r3"), md)
}

func TestRequestIDFrom(t *testing.T) {
	require.Empty(t, identity.RequestIDFrom(context.Background()))
	require.Equal(t, "a", identity.RequestIDFrom(identity.WithRequestID(context.Background(), "a")))
	ctx := context.Background()
	require.Equal(t, ctx, identity.WithRequestID(ctx, ""), "an empty ID changes nothing")

	served := metadata.NewIncomingContext(context.Background(), metadata.Pairs(identity.MetadataRequestID, "in"))
	require.Equal(t, "in", identity.RequestIDFrom(served), "a handler sees its caller's ID")
	require.Equal(t, "own", identity.RequestIDFrom(identity.WithRequestID(served, "own")), "its own wins")
}

func TestRequestIDsAreUnique(t *testing.T) {
	a, b := identity.NewRequestIDs(), identity.NewRequestIDs()
	seen := map[string]bool{}
	for range 1000 {
		for _, id := range []string{a.Next(), b.Next()} {
			require.False(t, seen[id], "repeated: %s", id)
			require.Regexp(t, `^[0-9a-f]{16}-[0-9a-z]+$`, id)
			seen[id] = true
		}
	}
}

// IDs taken concurrently, across many blocks, are unique and well formed.
func TestRequestIDsConcurrent(t *testing.T) {
	r := identity.NewRequestIDs()
	const workers, each = 4, 1000
	got := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range got {
		wg.Go(func() {
			for range each {
				got[w] = append(got[w], r.Next())
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, ids := range got {
		for _, id := range ids {
			require.False(t, seen[id], "repeated: %s", id)
			require.Regexp(t, `^[0-9a-f]{16}-[0-9a-z]+$`, id)
			seen[id] = true
		}
	}
	require.Len(t, seen, workers*each)
}

func BenchmarkRequestIDsNext(b *testing.B) {
	r := identity.NewRequestIDs()
	b.ReportAllocs()
	for b.Loop() {
		if r.Next() == "" {
			b.Fatal("empty")
		}
	}
}

// A Target's Context carries its identity, and nothing else, as the
// outgoing metadata, made once; AppendRequestID adds the request ID.
func TestTargetContextCarriesTheIdentityAlone(t *testing.T) {
	tg := identity.NewTarget(session.Session{ServerID: 7, LeaseID: 42, Incarnation: "abc"})
	require.Same(t, tg.Context(), tg.Context(), "made once")
	md, ok := metadata.FromOutgoingContext(tg.Context())
	require.True(t, ok)
	require.Equal(t, metadata.Pairs(identity.MetadataServerID, "7", identity.MetadataLeaseID, "42", identity.MetadataIncarnation, "abc"), md)
	_, hasDeadline := tg.Context().Deadline()
	require.False(t, hasDeadline)
	require.Nil(t, tg.Context().Done())

	md, _ = metadata.FromOutgoingContext(identity.AppendRequestID(tg.Context(), "rid-1"))
	require.Equal(t, []string{"rid-1"}, md.Get(identity.MetadataRequestID))
	require.Equal(t, []string{"7"}, md.Get(identity.MetadataServerID))
	require.Len(t, md, 4)
}
