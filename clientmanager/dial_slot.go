package clientmanager

import (
	"context"
	"net"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/coordkit/clientmanager/session"
)

// dialSlot is one dial attempt's hold on a MaxParallelDials slot. The
// attempt gives it back as soon as its connection is open (see slotCreds),
// after DialSlotTimeout, or when it ends, whichever comes first.
type dialSlot struct {
	slots    chan struct{}
	released atomic.Bool
}

// acquireDialSlot waits for a free slot of slots, or for ctx's end.
func acquireDialSlot(ctx context.Context, slots chan struct{}) (*dialSlot, error) {
	select {
	case slots <- struct{}{}:
		return &dialSlot{slots: slots}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release gives the slot back; only the first call does.
func (s *dialSlot) release() {
	if s.released.CompareAndSwap(false, true) {
		<-s.slots
	}
}

// slotDialer is a Dialer that can give the attempt's dial slot back
// before it returns: once its connection is open.
type slotDialer interface {
	dialSlot(ctx context.Context, s session.Session, slot *dialSlot) (Conn, error)
}

// slotCreds are the default dialer's transport credentials for one
// attempt: the handshake begins once the TCP connection is established,
// and that is when the attempt gives its slot back. Opening the
// connection is what the slots bound; the handshake and the wait for the
// server's HTTP/2 settings run without a slot, so a server that accepts
// connections and never answers holds none.
type slotCreds struct {
	credentials.TransportCredentials
	slot *dialSlot
}

// ClientHandshake implements credentials.TransportCredentials.
func (c slotCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c.slot.release()
	return c.TransportCredentials.ClientHandshake(ctx, authority, conn)
}

// Clone implements credentials.TransportCredentials.
func (c slotCreds) Clone() credentials.TransportCredentials {
	return slotCreds{TransportCredentials: c.TransportCredentials.Clone(), slot: c.slot}
}

// credsOption is the default dialer's transport credentials option: the
// grpc option itself, embedded, and the credentials, which NewGRPCDialer
// finds among its options so that each attempt can wrap them in
// slotCreds.
type credsOption struct {
	grpc.DialOption
	creds credentials.TransportCredentials
}

// withSlotCreds returns the option that sets creds as the transport
// credentials of the default dialer.
func withSlotCreds(creds credentials.TransportCredentials) grpc.DialOption {
	return credsOption{DialOption: grpc.WithTransportCredentials(creds), creds: creds}
}

// connOpenedKey is the context key of the hook connOpened calls.
type connOpenedKey struct{}

// withConnOpened returns a child of ctx that makes the default dialer
// hand fn its connection as soon as it is made, before it connects: the
// connector opens the health watch's stream then, and the stream, waiting
// for READY, goes out the moment the transport is up — the dial and the
// first health answer overlap.
func withConnOpened(ctx context.Context, fn func(Conn)) context.Context {
	return context.WithValue(ctx, connOpenedKey{}, fn)
}

// connOpened hands conn to ctx's hook, if any (see withConnOpened).
func connOpened(ctx context.Context, conn Conn) {
	if fn, ok := ctx.Value(connOpenedKey{}).(func(Conn)); ok {
		fn(conn)
	}
}
