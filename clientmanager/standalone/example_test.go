package standalone_test

import (
	"context"
	"fmt"

	"github.com/coordkit/clientmanager/clientmanager/standalone"
	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// A single-binary deployment registers its services in a Server and
// calls them through the same generated clients, with no listener.
func ExampleServer() {
	self := func() session.Session { return session.Session{ServerID: 1, LeaseID: 100} }
	sa := standalone.New(
		standalone.WithUnaryInterceptor(identity.UnaryServerInterceptor(self)))
	healthpb.RegisterHealthServer(sa, health.NewServer())
	// Give sa to clientmanager.New with clientmanager.WithDialer(sa); here
	// we dial it directly.
	conn, err := sa.Dial(context.Background(), self())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = conn.Close() }()

	hc := healthpb.NewHealthClient(conn)
	resp, err := hc.Check(identity.Outgoing(context.Background(), self()), &healthpb.HealthCheckRequest{})
	fmt.Println(resp.GetStatus(), err)

	stale := session.Session{ServerID: 1, LeaseID: 99}
	_, err = hc.Check(identity.Outgoing(context.Background(), stale), &healthpb.HealthCheckRequest{})
	fmt.Println(status.Code(err), identity.IsMismatch(err))
	// Output:
	// SERVING <nil>
	// FailedPrecondition true
}
