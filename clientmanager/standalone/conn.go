package standalone

import (
	"github.com/coordkit/clientmanager/clientmanager"

	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// errClosing is returned by calls on a closed standalone
// connection, with the code grpc uses for a closed ClientConn.
var errClosing = status.Error(codes.Canceled, "standalone: connection is closing")

// conn is a Conn of a Server. It owns the goroutines that run
// stream handlers; Close cancels every call in flight and waits for them.
type conn struct {
	owner  *Server
	ctx    context.Context // ends on Close
	cancel context.CancelFunc

	mu      sync.Mutex // guards closed and wg.Add against Close
	closed  bool
	handler sync.WaitGroup // stream handlers
}

var _ clientmanager.Conn = (*conn)(nil)

func newConn(owner *Server) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{owner: owner, ctx: ctx, cancel: cancel}
}

// GetState is READY until Close, SHUTDOWN after.
func (c *conn) GetState() connectivity.State {
	if c.ctx.Err() != nil {
		return connectivity.Shutdown
	}
	return connectivity.Ready
}

// WaitForStateChange blocks until the state differs from source (that is,
// until Close when source is READY) or ctx ends; it reports whether the
// state changed.
func (c *conn) WaitForStateChange(ctx context.Context, source connectivity.State) bool {
	if c.GetState() != source {
		return true
	}
	if source == connectivity.Shutdown { // final: it never changes
		<-ctx.Done()
		return false
	}
	select {
	case <-c.ctx.Done():
		return true
	case <-ctx.Done():
		return false
	}
}

// Connect does nothing: the connection is always READY.
func (c *conn) Connect() {}

// Close cancels every call in flight on the connection, waits for the stream
// handlers to return and makes later calls fail with codes.Canceled. It is
// idempotent. Handlers must honour their context, as with grpc.Server.
func (c *conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.handler.Wait()
	return nil
}

// Invoke runs a unary method's handler in the caller's goroutine.
func (c *conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	m, err := c.owner.lookup(method)
	if err != nil {
		return err
	}
	if m.unary == nil {
		return status.Errorf(codes.Unimplemented, "standalone: %s is a stream, not a unary method", method)
	}
	if err := c.callable(ctx); err != nil {
		return err
	}
	tr := &transport{method: method}
	sctx, cancel := c.serverContext(ctx, tr)
	defer cancel()

	resp, herr := m.unary.Handler(m.impl, sctx, func(in any) error { return copyMessage(in, args, false) }, c.owner.unary)
	tr.deliver(opts)
	if err := c.callable(ctx); err != nil {
		return err
	}
	if herr != nil {
		return toStatusError(herr)
	}
	return copyMessage(reply, resp, true)
}

// callable returns the status a call gets when ctx has ended or the
// connection is closed.
func (c *conn) callable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	if c.ctx.Err() != nil {
		return errClosing
	}
	return nil
}

// serverContext derives a handler's context from the caller's: it ends with
// the caller's context or Close, carries the caller's outgoing metadata as
// incoming metadata and none as outgoing (so it is not forwarded by calls
// the handler makes), and holds tr for grpc.SetHeader and friends.
func (c *conn) serverContext(ctx context.Context, tr *transport) (context.Context, context.CancelFunc) {
	md, ok := metadata.FromOutgoingContext(ctx) // nil when none: still "has metadata" to the handler
	if ok {
		ctx = metadata.NewOutgoingContext(ctx, nil)
	}
	ctx = metadata.NewIncomingContext(ctx, md)
	ctx = grpc.NewContextWithServerTransportStream(ctx, tr)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// transport is the grpc.ServerTransportStream of one call: it
// collects the headers and trailers the handler sets.
type transport struct {
	method string

	mu         sync.Mutex
	header     metadata.MD
	trailer    metadata.MD
	headerSent bool
	sent       chan struct{} // streams only: closed when the header is sent
}

var _ grpc.ServerTransportStream = (*transport)(nil)

// Method returns the full method name.
func (t *transport) Method() string { return t.method }

// SetHeader merges md into the header; it fails once the header was sent.
func (t *transport) SetHeader(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.headerSent {
		return status.Error(codes.Internal, "standalone: header already sent")
	}
	t.header = metadata.Join(t.header, md)
	return nil
}

// SendHeader merges md into the header and sends it.
func (t *transport) SendHeader(md metadata.MD) error {
	if err := t.SetHeader(md); err != nil {
		return err
	}
	t.sendHeader()
	return nil
}

// SetTrailer merges md into the trailer.
func (t *transport) SetTrailer(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.trailer = metadata.Join(t.trailer, md)
	return nil
}

// sendHeader marks the header sent; idempotent.
func (t *transport) sendHeader() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.headerSent {
		t.headerSent = true
		if t.sent != nil {
			close(t.sent)
		}
	}
}

// snapshot returns copies of the header and trailer.
func (t *transport) snapshot() (header, trailer metadata.MD) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.header.Copy(), t.trailer.Copy()
}

// deliver fills the grpc.Header and grpc.Trailer call options of a unary call.
func (t *transport) deliver(opts []grpc.CallOption) {
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr, _ = t.snapshot()
		case grpc.TrailerCallOption:
			_, *o.TrailerAddr = t.snapshot()
		}
	}
}

// copyMessage merges src into dst, both proto messages of the same type,
// after resetting dst when reset is set.
func copyMessage(dst, src any, reset bool) error {
	d, ok := dst.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "standalone: %T is not a proto.Message", dst)
	}
	s, ok := src.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "standalone: %T is not a proto.Message", src)
	}
	dr, sr := d.ProtoReflect(), s.ProtoReflect()
	if dr.Descriptor().FullName() != sr.Descriptor().FullName() {
		return status.Errorf(codes.Internal, "standalone: cannot copy %s into %s",
			sr.Descriptor().FullName(), dr.Descriptor().FullName())
	}
	if !dr.IsValid() {
		return status.Errorf(codes.Internal, "standalone: nil %T", dst)
	}
	if reset {
		proto.Reset(d)
	}
	proto.Merge(d, s)
	return nil
}

// toStatusError converts a handler's error as grpc.Server does: a status
// error keeps its code, message and details, a context error maps to its
// code, anything else is Unknown. The handler's error chain is dropped.
func toStatusError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	if st.Code() == codes.OK {
		return status.Error(codes.Unknown, err.Error())
	}
	return st.Err()
}
