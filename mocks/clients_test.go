package mocks_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/clientmanager/standalone"
	"github.com/coordkit/clientmanager/mocks"
	"github.com/coordkit/clientmanager/session"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// anyQueryNodeServing is the call site under test: it asks a query node,
// through the manager, whether it serves.
func anyQueryNodeServing(ctx context.Context, cs clientmanager.Clients) (bool, error) {
	var serving bool
	err := cs.Invoke(ctx, "querynode", func(ctx context.Context, c *clientmanager.Client) error {
		resp, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		serving = resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
		return nil
	})
	return serving, err
}

// fakeQueryNode returns a client whose calls reach a health server in
// process, and that server to steer.
func fakeQueryNode(t *testing.T) (*clientmanager.Client, *health.Server) {
	t.Helper()
	sa := standalone.New()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(sa, hs)
	s := session.Session{ServerID: 7, ServerName: "querynode", Address: "127.0.0.1:0", LeaseID: 70}
	conn, err := sa.Dial(context.Background(), s)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return clientmanager.NewClientForTest(s, conn), hs
}

func TestCallSiteWithMockedClients(t *testing.T) {
	cases := []struct {
		name        string
		status      healthpb.HealthCheckResponse_ServingStatus
		invokeErr   error // returned by the mocked Invoke instead of calling
		wantServing bool
	}{
		{name: "serving", status: healthpb.HealthCheckResponse_SERVING, wantServing: true},
		{name: "not serving", status: healthpb.HealthCheckResponse_NOT_SERVING},
		{name: "no query node online", invokeErr: clientmanager.ErrServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			client, hs := fakeQueryNode(t)
			hs.SetServingStatus("", tc.status)

			m := mocks.NewClients(t)
			call := m.EXPECT().Invoke(mock.Anything, "querynode", mock.Anything)
			if tc.invokeErr != nil {
				call.Return(tc.invokeErr).Once()
			} else {
				call.RunAndReturn(func(ctx context.Context, _ string, f func(context.Context, *clientmanager.Client) error, _ ...clientmanager.CallOption) error {
					return f(ctx, client)
				}).Once()
			}

			serving, err := anyQueryNodeServing(ctx, m)
			if tc.invokeErr != nil {
				require.ErrorIs(t, err, tc.invokeErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantServing, serving)
		})
	}
}

func TestMockedClientLookups(t *testing.T) {
	client, _ := fakeQueryNode(t)
	m := mocks.NewClients(t)
	m.EXPECT().GetClient("querynode").Return(client, nil).Once()
	m.EXPECT().IsOnline(int64(7)).Return(true).Once()

	var cs clientmanager.Clients = m
	got, err := cs.GetClient("querynode")
	require.NoError(t, err)
	require.Equal(t, int64(7), got.NodeID())
	require.True(t, cs.IsOnline(got.NodeID()))
}

// A call site that uses generated stubs takes its connection from
// Clients.RoleConn; the mock hands it one to a fake in process.
func TestMockedRoleConn(t *testing.T) {
	sa := standalone.New()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(sa, hs)
	conn, err := sa.Dial(context.Background(), session.Session{ServerID: 7, ServerName: "querynode"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	m := mocks.NewClients(t)
	m.EXPECT().RoleConn("querynode").Return(conn).Once()
	var cs clientmanager.Clients = m
	resp, err := healthpb.NewHealthClient(cs.RoleConn("querynode")).Check(context.Background(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
}
