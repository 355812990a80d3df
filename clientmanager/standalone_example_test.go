package clientmanager_test

import (
	"context"
	"fmt"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// A single-binary deployment registers its services in a Standalone and
// calls them through the same generated clients, with no listener.
func ExampleStandalone() {
	self := func() session.Session { return session.Session{ServerID: 1, LeaseID: 100} }
	sa := clientmanager.NewStandalone(
		clientmanager.WithUnaryInterceptor(clientmanager.IdentityUnaryServerInterceptor(self)))
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
	resp, err := hc.Check(clientmanager.OutgoingIdentity(context.Background(), self()), &healthpb.HealthCheckRequest{})
	fmt.Println(resp.GetStatus(), err)

	stale := session.Session{ServerID: 1, LeaseID: 99}
	_, err = hc.Check(clientmanager.OutgoingIdentity(context.Background(), stale), &healthpb.HealthCheckRequest{})
	fmt.Println(status.Code(err), clientmanager.IsIdentityMismatch(err))
	// Output:
	// SERVING <nil>
	// FailedPrecondition true
}

// A server rejects calls addressed to another incarnation; calls that say
// nothing about whom they are for pass.
func ExampleCheckIdentity() {
	self := session.Session{ServerID: 7, LeaseID: 70}

	err := clientmanager.CheckIdentity(incoming(session.Session{ServerID: 7, LeaseID: 70}), self)
	fmt.Println("same process:", status.Code(err))

	err = clientmanager.CheckIdentity(incoming(session.Session{ServerID: 3, LeaseID: 30}), self)
	info, _ := clientmanager.IdentityMismatchInfo(err)
	fmt.Println("other process:", status.Code(err), info.GetMetadata()["expected_server_id"], "->",
		info.GetMetadata()["actual_server_id"])

	err = clientmanager.CheckIdentity(context.Background(), self)
	fmt.Println("no identity:", status.Code(err) == codes.OK)
	// Output:
	// same process: OK
	// other process: FailedPrecondition 3 -> 7
	// no identity: true
}

// incoming turns the identity a client sends into what the server sees.
func incoming(target session.Session) context.Context {
	md, _ := metadata.FromOutgoingContext(clientmanager.OutgoingIdentity(context.Background(), target))
	return metadata.NewIncomingContext(context.Background(), md)
}
