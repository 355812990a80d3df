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

// A server rejects calls addressed to another process; calls for its own
// process pass whatever lease they name, and calls that say nothing about
// whom they are for pass.
func ExampleCheckIdentity() {
	// Re-registered under lease 71 after losing lease 70.
	self := session.Session{ServerID: 7, Incarnation: "9f86d081884c7d65", LeaseID: 71}

	err := clientmanager.CheckIdentity(incoming(self), self)
	fmt.Println("same process:", status.Code(err))

	before := self
	before.LeaseID = 70 // addressed before the caller saw the new lease
	err = clientmanager.CheckIdentity(incoming(before), self)
	fmt.Println("same process, old lease:", status.Code(err))

	err = clientmanager.CheckIdentity(incoming(session.Session{ServerID: 3, LeaseID: 30}), self)
	info, _ := clientmanager.IdentityMismatchInfo(err)
	fmt.Println("other process:", status.Code(err), info.GetMetadata()["expected_server_id"], "->",
		info.GetMetadata()["actual_server_id"])

	err = clientmanager.CheckIdentity(context.Background(), self)
	fmt.Println("no identity:", status.Code(err) == codes.OK)
	// Output:
	// same process: OK
	// same process, old lease: OK
	// other process: FailedPrecondition 3 -> 7
	// no identity: true
}

// incoming turns the identity a client sends into what the server sees.
func incoming(target session.Session) context.Context {
	md, _ := metadata.FromOutgoingContext(clientmanager.OutgoingIdentity(context.Background(), target))
	return metadata.NewIncomingContext(context.Background(), md)
}
