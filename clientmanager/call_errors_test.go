package clientmanager

import (
	"context"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func errorsIsUnavailable(err error) bool { return errors.Is(err, ErrServiceUnavailable) }

func TestUnavailableErrorsAreErrServiceUnavailable(t *testing.T) {
	down := func(context.Context, int64) error { return status.Error(codes.Unavailable, "down") }
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, m *Manager, clients []*Client)
		call     func(m *Manager) error
		sentinel error  // also matched
		nodeID   int64  // of the *NodeError; -1: any node of the role
		role     string // of the *NodeError; "-": none (the node is not listed)
	}{
		{
			name:   "every replica answered Unavailable",
			call:   func(m *Manager) error { return m.Invoke(context.Background(), testRole, callUnary, Idempotent()) },
			nodeID: -1,
		},
		{
			name:   "the one attempt of a call answered Unavailable",
			call:   func(m *Manager) error { return m.Invoke(context.Background(), testRole, callUnary) },
			nodeID: -1,
		},
		{
			name: "every breaker open",
			setup: func(t *testing.T, _ *Manager, clients []*Client) {
				for _, c := range clients {
					forceOpen(t, c)
				}
			},
			call:     func(m *Manager) error { return m.Invoke(context.Background(), testRole, callUnary) },
			sentinel: ErrAllNodesUnhealthy,
		},
		{
			name:     "the node's breaker open",
			setup:    func(t *testing.T, _ *Manager, clients []*Client) { forceOpen(t, clients[1]) },
			call:     func(m *Manager) error { return m.InvokeNode(context.Background(), 2, callUnary) },
			sentinel: ErrCircuitOpen,
			nodeID:   2,
		},
		{
			name: "the node left",
			setup: func(_ *testing.T, _ *Manager, clients []*Client) {
				for _, c := range clients {
					c.kill(ErrNodeGone)
				}
			},
			call:     func(m *Manager) error { return m.InvokeNode(context.Background(), 1, callUnary) },
			sentinel: ErrNodeGone,
			nodeID:   1,
		},
		{
			name:   "no such node",
			call:   func(m *Manager) error { return m.InvokeNode(context.Background(), 99, callUnary) },
			nodeID: 99,
			role:   "-",
		},
		{
			name:     "closed",
			setup:    func(_ *testing.T, m *Manager, _ []*Client) { require.NoError(t, m.Close()) },
			call:     func(m *Manager) error { return m.Invoke(context.Background(), testRole, callUnary) },
			sentinel: ErrClosed,
		},
		{
			name:     "closed, one node",
			setup:    func(_ *testing.T, m *Manager, _ []*Client) { require.NoError(t, m.Close()) },
			call:     func(m *Manager) error { return m.InvokeNode(context.Background(), 1, callUnary) },
			sentinel: ErrClosed,
			nodeID:   1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, clients := unitManager(t, clockwork.NewFakeClock(), 2, func(c *Config) { c.CallAttempts = 2 }, down)
			if tc.setup != nil {
				tc.setup(t, m, clients)
			}
			err := tc.call(m)
			require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
			require.True(t, errorsIsUnavailable(err), "errors.Is(%v, ErrServiceUnavailable)", err)
			if tc.sentinel != nil {
				require.ErrorIs(t, err, tc.sentinel)
			}
			var ne *NodeError
			require.ErrorAs(t, err, &ne)
			switch tc.role {
			case "-":
				require.Empty(t, ne.Role)
			default:
				require.Equal(t, testRole, ne.Role, "the role it concerns")
			}
			switch tc.nodeID {
			case -1:
				require.Contains(t, []int64{1, 2}, ne.NodeID, "the node of the last attempt")
			default:
				require.Equal(t, tc.nodeID, ne.NodeID)
			}
		})
	}
}

func TestOtherErrorsAreNotErrServiceUnavailable(t *testing.T) {
	m, _ := unitManager(t, clockwork.NewFakeClock(), 1, nil, func(context.Context, int64) error {
		return status.Error(codes.NotFound, "no such collection")
	})
	err := m.Invoke(context.Background(), testRole, callUnary)
	require.Equal(t, codes.NotFound, status.Code(err))
	require.Equal(t, "no such collection", status.Convert(err).Message(), "the node's status, unchanged")
	require.False(t, errorsIsUnavailable(err))
	require.False(t, errorsIsUnavailable(ErrOverloaded))
	var ne *NodeError
	require.ErrorAs(t, err, &ne)
	require.Equal(t, NodeError{Role: testRole, NodeID: 1, Err: ne.Err}, *ne)
}

// TestFastFailErrorsCarryNoStack: the errors of calls refused at once, the
// common case under overload, are made without a stack trace, and the
// fast fail of a role with no node makes nothing at all.
func TestFastFailErrorsCarryNoStack(t *testing.T) {
	m, clients := unitManager(t, clockwork.NewFakeClock(), 2, nil, ok)
	for _, c := range clients {
		forceOpen(t, c)
	}
	unhealthy := m.Invoke(context.Background(), testRole, callUnary)
	require.ErrorIs(t, unhealthy, ErrAllNodesUnhealthy)
	circuit := m.InvokeNode(context.Background(), 1, callUnary)
	require.ErrorIs(t, circuit, ErrCircuitOpen)
	for _, err := range []error{unhealthy, circuit} {
		_, _, _, hasStack := errors.GetOneLineSource(err)
		require.False(t, hasStack, "%+v", err)
	}

	empty, _ := newRegistryManager(t)
	call := func(context.Context, *Client) error { return nil }
	allocs := testing.AllocsPerRun(100, func() {
		if err := empty.Invoke(context.Background(), testRole, call); err == nil {
			t.Fatal("no fast fail")
		}
	})
	require.Zero(t, allocs)
}

func TestNodeErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  NodeError
		want string
	}{
		{NodeError{NodeID: 3, Err: ErrNodeGone}, "clientmanager: node 3: clientmanager: node gone"},
		{NodeError{Role: "querynode", Err: ErrServiceUnavailable}, `clientmanager: role "querynode": clientmanager: service unavailable`},
		{NodeError{Role: "querynode", NodeID: 3, Err: ErrNodeGone}, `clientmanager: role "querynode" node 3: clientmanager: node gone`},
		{NodeError{NodeID: 3}, "clientmanager: node 3"},
	} {
		require.Equal(t, tc.want, tc.err.Error())
	}
}
