package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

// Every line of a dial attempt names it: the attempt's correlation_id is
// on its start and its end, each attempt has its own, and the dialer
// finds it in its context.
func TestDialAttemptsHaveAnIDInEveryLine(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	dialed := make(chan string, 16)
	refused := refusedAddr(t)
	inner := NewGRPCDialer(dialOptions(testConfig(), buildOptions(nil))...)
	dialer := dialerFunc(func(ctx context.Context, s session.Session) (Conn, error) {
		select {
		case dialed <- identity.RequestIDFrom(ctx):
		default: // more attempts than the test looks at
		}
		return inner.Dial(ctx, s)
	})
	e := newEnv(t, func(c *Config) {
		c.DialAttempts = 2
		c.DialTimeout = 500 * time.Millisecond
	}, WithLogger(zap.New(core)), WithDialer(dialer))
	srv := startServer(t)
	e.node(1, refused)
	e.node(2, srv.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitState(1, NodeUnreachable)
	e.waitOnline(2)
	require.NoError(t, e.m.Close())
	close(dialed)

	started := logs.FilterMessage("dial attempt started").All()
	ended := append(logs.FilterMessage("dial attempt failed").All(), logs.FilterMessage("dial attempt connected").All()...)
	require.GreaterOrEqual(t, len(started), 3, "two attempts of node 1, one of node 2")
	ids := map[string]bool{}
	for _, e := range started {
		id, _ := e.ContextMap()["correlation_id"].(string)
		require.NotEmpty(t, id, "%v", e.ContextMap())
		require.False(t, ids[id], "one ID per attempt")
		ids[id] = true
	}
	for _, e := range ended {
		id, _ := e.ContextMap()["correlation_id"].(string)
		require.True(t, ids[id], "the end of an attempt names the attempt: %v", e.ContextMap())
	}
	for id := range dialed {
		require.True(t, ids[id], "the dialer's context carries the attempt's ID")
	}
}

// Every call of Invoke and RoleConn carries a request ID in its metadata:
// the caller's, or one Invoke makes, the same for every attempt of a call.
func TestInvokeCallsCarryTheRequestID(t *testing.T) {
	t.Parallel()
	var got []string
	icpt := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		got = append(got, metadata.ValueFromIncomingContext(ctx, identity.MetadataRequestID)...)
		return h(ctx, req)
	}
	e := newEnv(t, nil)
	srv := startServer(t, grpc.UnaryInterceptor(icpt))
	e.node(1, srv.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	c := e.waitOnline(1)
	ctx := context.Background()

	require.NoError(t, e.m.Invoke(identity.WithRequestID(ctx, "caller-1"), testRole, callUnary))
	require.NoError(t, e.m.Invoke(ctx, testRole, func(ctx context.Context, c *Client) error {
		if err := callUnary(ctx, c); err != nil { // two calls of one attempt: one ID
			return err
		}
		return callUnary(ctx, c)
	}))
	rc := e.m.RoleConn(testRole)
	require.NoError(t, rc.Invoke(ctx, "/cmtest.Test/Unary", new(emptypb.Empty), new(emptypb.Empty)))
	require.NoError(t, callUnary(ctx, c), "a call through Conn without one carries none")
	require.NoError(t, callUnary(identity.WithRequestID(ctx, "caller-2"), c), "or the context's")

	require.Len(t, got, 5)
	require.Equal(t, "caller-1", got[0])
	require.NotEmpty(t, got[1])
	require.Equal(t, got[1], got[2], "one ID per Invoke call")
	require.NotEmpty(t, got[3])
	require.NotEqual(t, got[1], got[3])
	require.Equal(t, "caller-2", got[4])
}

// A retried call carries the same request ID on every attempt.
func TestRetriesCarryTheSameRequestID(t *testing.T) {
	t.Parallel()
	var seen []string
	m, clients := unitManager(t, clockwork.NewFakeClock(), 2, noBreaker, ok)
	for _, c := range clients {
		c.conn().(*fakeConn).invoke = func(ctx context.Context, _ string) error {
			md, _ := metadata.FromOutgoingContext(ctx)
			seen = append(seen, md.Get(identity.MetadataRequestID)...)
			return status.Error(codes.Unavailable, "down")
		}
	}
	err := m.Invoke(context.Background(), testRole, callUnary, Idempotent(), Attempts(2))
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Len(t, seen, 2, "one call on each node")
	require.NotEmpty(t, seen[0])
	require.Equal(t, seen[0], seen[1])
}
