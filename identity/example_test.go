package identity_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

// A server rejects calls addressed to another process; calls for its own
// process pass whatever lease they name, and calls that say nothing about
// whom they are for pass.
func ExampleCheck() {
	// Re-registered under lease 71 after losing lease 70.
	self := session.Session{ServerID: 7, Incarnation: "9f86d081884c7d65", LeaseID: 71}

	err := identity.Check(incoming(self), self)
	fmt.Println("same process:", status.Code(err))

	before := self
	before.LeaseID = 70 // addressed before the caller saw the new lease
	err = identity.Check(incoming(before), self)
	fmt.Println("same process, old lease:", status.Code(err))

	err = identity.Check(incoming(session.Session{ServerID: 3, LeaseID: 30}), self)
	info, _ := identity.MismatchInfo(err)
	fmt.Println("other process:", status.Code(err), info.GetMetadata()[identity.MismatchExpectedServerID], "->",
		info.GetMetadata()[identity.MismatchActualServerID])

	err = identity.Check(context.Background(), self)
	fmt.Println("no identity:", status.Code(err) == codes.OK)
	// Output:
	// same process: OK
	// same process, old lease: OK
	// other process: FailedPrecondition 3 -> 7
	// no identity: true
}

// A request ID put in the caller's context travels with the call, and a
// handler reads it back from its own context.
func ExampleWithRequestID() {
	ctx := identity.WithRequestID(context.Background(), "checkout-42")
	out := identity.NewTarget(session.Session{ServerID: 7, LeaseID: 71}).Outgoing(ctx, identity.RequestIDFrom(ctx))

	md, _ := metadata.FromOutgoingContext(out) // what the server receives
	served := metadata.NewIncomingContext(context.Background(), md)
	fmt.Println(identity.RequestIDFrom(served))
	// Output:
	// checkout-42
}

// incoming turns the identity a client sends into what the server sees.
func incoming(target session.Session) context.Context {
	md, _ := metadata.FromOutgoingContext(identity.Outgoing(context.Background(), target))
	return metadata.NewIncomingContext(context.Background(), md)
}
