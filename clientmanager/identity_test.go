package clientmanager_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/coordkit/clientmanager/clientmanager"
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
		grpc.UnaryInterceptor(clientmanager.IdentityUnaryServerInterceptor(selfFn)),
		grpc.StreamInterceptor(clientmanager.IdentityStreamServerInterceptor(selfFn)),
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
		fn := func() session.Session { return s }
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(clientmanager.IdentityUnaryClientInterceptor(fn)),
			grpc.WithChainStreamInterceptor(clientmanager.IdentityStreamClientInterceptor(fn)))
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
	require.True(t, clientmanager.IsIdentityMismatch(err), "%v", err)
	info, ok := clientmanager.IdentityMismatchInfo(err)
	require.True(t, ok)
	require.Equal(t, map[string]string{
		clientmanager.MismatchExpectedServerID:    fmt.Sprint(expected.ServerID),
		clientmanager.MismatchExpectedLeaseID:     fmt.Sprint(expected.LeaseID),
		clientmanager.MismatchExpectedIncarnation: expected.Incarnation,
		clientmanager.MismatchActualServerID:      fmt.Sprint(actual.ServerID),
		clientmanager.MismatchActualLeaseID:       fmt.Sprint(actual.LeaseID),
		clientmanager.MismatchActualIncarnation:   actual.Incarnation,
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
			md: []string{clientmanager.MetadataServerID, "one", clientmanager.MetadataLeaseID, "10"}, wantCode: codes.InvalidArgument},
		{name: "malformed LeaseID",
			md: []string{clientmanager.MetadataServerID, "1", clientmanager.MetadataLeaseID, "1e3"}, wantCode: codes.InvalidArgument},
		{name: "LeaseID missing", md: []string{clientmanager.MetadataServerID, "1"}, wantCode: codes.InvalidArgument},
		{name: "ServerID repeated",
			md:       []string{clientmanager.MetadataServerID, "1", clientmanager.MetadataServerID, "1", clientmanager.MetadataLeaseID, "10"},
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
				require.Equal(t, tc.mismatch, clientmanager.IsIdentityMismatch(err), "%s: %v", kind, err)
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

func TestCheckIdentity(t *testing.T) {
	self := session.Session{ServerID: 7, LeaseID: 70}
	const sid, lid, inc = clientmanager.MetadataServerID, clientmanager.MetadataLeaseID, clientmanager.MetadataIncarnation
	cases := []struct {
		name     string
		self     *session.Session // nil: self
		md       metadata.MD      // incoming; nil: no metadata at all
		wantCode codes.Code
	}{
		{name: "no metadata", wantCode: codes.OK},
		{name: "no identity", md: metadata.Pairs("a", "b"), wantCode: codes.OK},
		{name: "match", md: metadata.Pairs(clientmanager.MetadataServerID, "7", clientmanager.MetadataLeaseID, "70"), wantCode: codes.OK},
		{name: "server differs", md: metadata.Pairs(clientmanager.MetadataServerID, "8", clientmanager.MetadataLeaseID, "70"),
			wantCode: codes.FailedPrecondition},
		{name: "lease differs", md: metadata.Pairs(clientmanager.MetadataServerID, "7", clientmanager.MetadataLeaseID, "71"),
			wantCode: codes.FailedPrecondition},
		{name: "both differ", md: metadata.Pairs(clientmanager.MetadataServerID, "-1", clientmanager.MetadataLeaseID, "0"),
			wantCode: codes.FailedPrecondition},
		{name: "empty value", md: metadata.Pairs(clientmanager.MetadataServerID, "", clientmanager.MetadataLeaseID, "70"),
			wantCode: codes.InvalidArgument},
		{name: "overflow", md: metadata.Pairs(clientmanager.MetadataServerID, "99999999999999999999", clientmanager.MetadataLeaseID, "70"),
			wantCode: codes.InvalidArgument},
		{name: "server id missing", md: metadata.Pairs(clientmanager.MetadataLeaseID, "70"), wantCode: codes.InvalidArgument},

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
			err := clientmanager.CheckIdentity(ctx, me)
			require.Equal(t, tc.wantCode, status.Code(err), "%v", err)
			require.Equal(t, tc.wantCode == codes.FailedPrecondition, clientmanager.IsIdentityMismatch(err))
		})
	}
}

func TestIdentityServerInterceptorReadsSelfLazily(t *testing.T) {
	calls := 0
	self := func() session.Session { calls++; return session.Session{ServerID: 3, LeaseID: 30} }
	icpt := clientmanager.IdentityUnaryServerInterceptor(self)
	handled := 0
	handler := func(context.Context, any) (any, error) { handled++; return "ok", nil }

	_, err := icpt(context.Background(), nil, &grpc.UnaryServerInfo{}, handler)
	require.NoError(t, err)
	require.Equal(t, 0, calls, "self read for a call without identity")
	require.Equal(t, 1, handled)

	ctx := metadata.NewIncomingContext(context.Background(),
		metadata.Pairs(clientmanager.MetadataServerID, "3", clientmanager.MetadataLeaseID, "31"))
	_, err = icpt(ctx, nil, &grpc.UnaryServerInfo{}, handler)
	require.True(t, clientmanager.IsIdentityMismatch(err))
	require.Equal(t, 1, calls)
	require.Equal(t, 1, handled, "handler ran for a mismatched call")

	// Without a self every addressed call is rejected, even one for the
	// zero identity.
	_, err = clientmanager.IdentityUnaryServerInterceptor(nil)(ctx, nil, &grpc.UnaryServerInfo{}, handler)
	require.True(t, clientmanager.IsIdentityMismatch(err))
	zero := metadata.NewIncomingContext(context.Background(),
		metadata.Pairs(clientmanager.MetadataServerID, "0", clientmanager.MetadataLeaseID, "0"))
	_, err = clientmanager.IdentityUnaryServerInterceptor(nil)(zero, nil, &grpc.UnaryServerInfo{}, handler)
	require.True(t, clientmanager.IsIdentityMismatch(err))
}

func TestOutgoingIdentityReplaces(t *testing.T) {
	ctx := metadata.AppendToOutgoingContext(context.Background(), "keep", "me")
	ctx = clientmanager.OutgoingIdentity(ctx, session.Session{ServerID: 1, LeaseID: 2})
	ctx = clientmanager.OutgoingIdentity(ctx, session.Session{ServerID: 3, LeaseID: 4})
	md, ok := metadata.FromOutgoingContext(ctx)
	require.True(t, ok)
	require.Equal(t, []string{"3"}, md.Get(clientmanager.MetadataServerID))
	require.Equal(t, []string{"4"}, md.Get(clientmanager.MetadataLeaseID))
	require.Equal(t, []string{"me"}, md.Get("keep"))

	in := metadata.NewIncomingContext(context.Background(), md)
	require.NoError(t, clientmanager.CheckIdentity(in, session.Session{ServerID: 3, LeaseID: 4}))

	// An incarnation is added, replaced, and dropped for a target without one.
	ctx = clientmanager.OutgoingIdentity(ctx, session.Session{ServerID: 5, LeaseID: 6, Incarnation: "a"})
	ctx = clientmanager.OutgoingIdentity(ctx, session.Session{ServerID: 5, LeaseID: 6, Incarnation: "b"})
	md, _ = metadata.FromOutgoingContext(ctx)
	require.Equal(t, []string{"b"}, md.Get(clientmanager.MetadataIncarnation))
	ctx = clientmanager.OutgoingIdentity(ctx, session.Session{ServerID: 5, LeaseID: 6})
	md, _ = metadata.FromOutgoingContext(ctx)
	require.Empty(t, md.Get(clientmanager.MetadataIncarnation))
	require.Equal(t, []string{"5"}, md.Get(clientmanager.MetadataServerID))
	fresh := clientmanager.OutgoingIdentity(context.Background(), session.Session{ServerID: 5, LeaseID: 6, Incarnation: "c"})
	md, _ = metadata.FromOutgoingContext(fresh)
	require.Equal(t, []string{"c"}, md.Get(clientmanager.MetadataIncarnation))
}

type statusCarrier struct{ st *status.Status }

func (e statusCarrier) Error() string              { return e.st.Message() }
func (e statusCarrier) GRPCStatus() *status.Status { return e.st }

func TestIsIdentityMismatch(t *testing.T) {
	in := metadata.NewIncomingContext(context.Background(),
		metadata.Pairs(clientmanager.MetadataServerID, "1", clientmanager.MetadataLeaseID, "1"))
	mismatch := clientmanager.CheckIdentity(in, session.Session{ServerID: 2, LeaseID: 2})
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
		{"other reason", withInfo(codes.FailedPrecondition, "OTHER", clientmanager.IdentityErrorDomain), false},
		{"other domain", withInfo(codes.FailedPrecondition, clientmanager.IdentityMismatchReason, "example.com"), false},
		{"other code", withInfo(codes.Unavailable, clientmanager.IdentityMismatchReason, clientmanager.IdentityErrorDomain), false},
		{"unavailable", status.Error(codes.Unavailable, "down"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, clientmanager.IsIdentityMismatch(tc.err))
		})
	}
}

// OutgoingIdentity runs on every call made through a Client.
func BenchmarkOutgoingIdentity(b *testing.B) {
	s := session.Session{ServerID: 12, LeaseID: 7587888888888888}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-trace", "abc")
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = clientmanager.OutgoingIdentity(ctx, s)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = clientmanager.OutgoingIdentity(ctx, s)
			}
		})
	})
}

// CheckIdentity runs on every call a server with the interceptors serves.
func BenchmarkCheckIdentity(b *testing.B) {
	self := session.Session{ServerID: 12, LeaseID: 7587888888888888}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		clientmanager.MetadataServerID, "12", clientmanager.MetadataLeaseID, "7587888888888888",
		"user-agent", "grpc-go", "content-type", "application/grpc"))
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := clientmanager.CheckIdentity(ctx, self); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := clientmanager.CheckIdentity(ctx, self); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
