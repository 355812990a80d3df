package startup

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

func TestRunnerIdentity(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig("querynode")
	cfg.GateAllowlist = []string{methodAdmin}
	comp := &testComponent{startGate: make(chan struct{})}
	h := startRunner(t, m.Client, nil, cfg, comp)
	h.waitState(StateStarting)
	ctx := testCtx(t)

	t.Run("before registration", func(t *testing.T) {
		require.NoError(t, callUnary(ctx, h.conn, methodAdmin), "a call without identity passes")
		for _, s := range []session.Session{{}, {ServerID: 1, LeaseID: 1}} {
			err := callUnary(identity.Outgoing(ctx, s), h.conn, methodAdmin)
			require.True(t, identity.IsMismatch(err), "a process without a session has no identity to match: %v", err)
		}
	})

	close(comp.startGate)
	h.waitState(StateHealthy)
	self := h.r.Session()
	require.NotEmpty(t, self.Incarnation)
	other := func(f func(*session.Session)) session.Session {
		s := self
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		mismatch bool
	}{
		{"own identity", identity.Outgoing(ctx, self), false},
		{"no identity", ctx, false},
		// A process is its ServerID and Incarnation: a call addressed with
		// a lease it held before re-registering is still for it.
		{"own incarnation, other lease", identity.Outgoing(ctx, other(func(s *session.Session) { s.LeaseID++ })), false},
		{"earlier process", identity.Outgoing(ctx, other(func(s *session.Session) {
			s.Incarnation = session.NewIncarnation()
		})), true},
		{"caller without incarnation, other lease", identity.Outgoing(ctx, other(func(s *session.Session) {
			s.Incarnation, s.LeaseID = "", s.LeaseID+1
		})), true},
		{"other server", identity.Outgoing(ctx, other(func(s *session.Session) { s.ServerID++ })), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, call := range map[string]func() error{
				"unary":  func() error { return callUnary(tc.ctx, h.conn, methodEcho) },
				"stream": func() error { return callStream(tc.ctx, h.conn) },
			} {
				err := call()
				if !tc.mismatch {
					require.NoError(t, err, name)
					continue
				}
				require.Equal(t, codes.FailedPrecondition, status.Code(err), name)
				require.True(t, identity.IsMismatch(err), name)
			}
		})
	}
	require.NoError(t, h.stop())
}

// TestIdentityBeforeRegistrationReturns: a call addressed to the process's
// Incarnation passes before its registration has returned (its key is
// visible to managers as soon as it is put), and a call addressed to
// another incarnation does not.
func TestIdentityBeforeRegistrationReturns(t *testing.T) {
	m := etcdtest.Start(t)
	r, err := New(m.Client, nil, testConfig("querynode"), &testComponent{})
	require.NoError(t, err)
	self := r.identity()
	require.Len(t, self.Incarnation, 16, "New gives the process its Incarnation")
	require.Zero(t, self.ServerID)
	call := func(inc string) error {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
			identity.MetadataServerID, "7", identity.MetadataLeaseID, "99",
			identity.MetadataIncarnation, inc))
		return identity.Check(ctx, r.identity())
	}
	require.NoError(t, call(self.Incarnation))
	require.True(t, identity.IsMismatch(call("0123456789abcdef")))
	require.NoError(t, r.Close())
}

const methodTraced = "/startup.test.Traced/Call"

// tracedServiceDesc's one method logs "handled" with Logger(ctx) and
// echoes its request.
var tracedServiceDesc = grpc.ServiceDesc{
	ServiceName: "startup.test.Traced",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				Logger(ctx).Info("handled")
				return req, nil
			}
			if ic == nil {
				return h(ctx, in)
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: methodTraced}, h)
		},
	}},
}

// One request is followed from the caller to the handler over a real
// connection: the request ID of the caller's context, or the one Invoke
// or RoleConn makes when it has none, reaches the server in the call's
// metadata and is the correlation_id of what the handler logs.
func TestRequestIDFollowedFromCallerToHandler(t *testing.T) {
	m := etcdtest.Start(t)
	core, logs := observer.New(zap.InfoLevel)
	cfg := testConfig("querynode")
	h := startRunnerWith(t, m.Client, nil, cfg, &testComponent{}, func(reg grpc.ServiceRegistrar) {
		reg.RegisterService(&tracedServiceDesc, struct{}{})
	}, WithLogger(zap.New(core)))
	h.waitState(StateHealthy)

	mc := clientmanager.DefaultConfig()
	mc.SessionConfig = cfg.SessionConfig
	mgr, err := clientmanager.New(m.Client, mc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mgr.Close() })
	require.NoError(t, mgr.AddDependency("querynode"))
	ctx := testCtx(t)
	require.NoError(t, mgr.WaitForRole(ctx, "querynode", 1))

	err = mgr.Invoke(identity.WithRequestID(ctx, "checkout-42"), "querynode", func(ctx context.Context, c *clientmanager.Client) error {
		require.Equal(t, "checkout-42", identity.RequestIDFrom(ctx), "the attempt's context carries it")
		return callUnary(ctx, c.Conn(), methodTraced)
	})
	require.NoError(t, err)
	require.NoError(t, callUnary(identity.WithRequestID(ctx, "search-7"), mgr.RoleConn("querynode"), methodTraced))
	for range 2 {
		require.NoError(t, callUnary(ctx, mgr.RoleConn("querynode"), methodTraced), "an ID is made")
	}
	require.NoError(t, callUnary(ctx, h.conn, methodTraced), "a call from elsewhere carries none")

	handled := logs.FilterMessage("handled").All()
	require.Len(t, handled, 5)
	ids := make([]any, len(handled))
	for i, e := range handled {
		f := e.ContextMap()
		require.Equal(t, "querynode", f["role"])
		require.Equal(t, methodTraced, f["method"])
		ids[i] = f["correlation_id"]
	}
	require.Equal(t, "checkout-42", ids[0])
	require.Equal(t, "search-7", ids[1])
	require.Regexp(t, `^[0-9a-f]{16}-[0-9a-z]+$`, ids[2])
	require.Regexp(t, `^[0-9a-f]{16}-[0-9a-z]+$`, ids[3])
	require.NotEqual(t, ids[2], ids[3], "one ID per call")
	require.Nil(t, ids[4])

	require.NotNil(t, Logger(context.Background()), "outside a served call: a no-op logger")
	require.NoError(t, h.stop())
}
