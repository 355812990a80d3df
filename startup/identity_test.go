package startup

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager"
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
			err := callUnary(clientmanager.OutgoingIdentity(ctx, s), h.conn, methodAdmin)
			require.True(t, clientmanager.IsIdentityMismatch(err), "a process without a session has no identity to match: %v", err)
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
		{"own identity", clientmanager.OutgoingIdentity(ctx, self), false},
		{"no identity", ctx, false},
		// A process is its ServerID and Incarnation: a call addressed with
		// a lease it held before re-registering is still for it.
		{"own incarnation, other lease", clientmanager.OutgoingIdentity(ctx, other(func(s *session.Session) { s.LeaseID++ })), false},
		{"earlier process", clientmanager.OutgoingIdentity(ctx, other(func(s *session.Session) {
			s.Incarnation = session.NewIncarnation()
		})), true},
		{"caller without incarnation, other lease", clientmanager.OutgoingIdentity(ctx, other(func(s *session.Session) {
			s.Incarnation, s.LeaseID = "", s.LeaseID+1
		})), true},
		{"other server", clientmanager.OutgoingIdentity(ctx, other(func(s *session.Session) { s.ServerID++ })), true},
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
				require.True(t, clientmanager.IsIdentityMismatch(err), name)
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
			clientmanager.MetadataServerID, "7", clientmanager.MetadataLeaseID, "99",
			clientmanager.MetadataIncarnation, inc))
		return clientmanager.CheckIdentity(ctx, r.identity())
	}
	require.NoError(t, call(self.Incarnation))
	require.True(t, clientmanager.IsIdentityMismatch(call("0123456789abcdef")))
	require.NoError(t, r.Close())
}
