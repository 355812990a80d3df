package clientmanager

import (
	"context"
	"io"
	"sync"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/identity"
)

// clientConn is what Client.Conn returns: it adds the target's identity
// (computed once per session record) and the request ID to every call,
// and counts it so that Status shows it in flight. With PoolSize > 1 it
// spreads calls over the node's pooled connections. A unary call made
// under an Invoke attempt captures its trailer, so that the server's
// retry pushback reaches Invoke. A unary call is not bound to the node's
// life: when the node leaves its connector closes the connection, which
// ends the call, and the call's error becomes ErrNodeGone (outcome).
type clientConn Client

var _ grpc.ClientConnInterface = (*clientConn)(nil)

// Invoke implements grpc.ClientConnInterface.
func (cc *clientConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	c := (*Client)(cc)
	c.calls.begin()
	defer c.calls.end()
	raw, pc, err := c.ready()
	if err != nil {
		return err
	}
	defer pc.end()
	a := attemptOf(ctx)
	if a == nil {
		err = raw.Invoke(c.target.Load().Outgoing(ctx, identity.RequestIDFrom(ctx)), method, args, reply, opts...)
		err, _ = c.outcome(ctx, err)
		return err
	}
	a.begin()
	trailer, opts := a.captureTrailer(opts)
	if t := c.target.Load(); ctx == context.Context(a) && a.carried == t {
		// The attempt carries this connection's identity already.
		if a.requestID != "" {
			ctx = identity.AppendRequestID(ctx, a.requestID)
		}
	} else {
		ctx = t.Outgoing(ctx, a.requestID)
	}
	err = raw.Invoke(ctx, method, args, reply, opts...)
	if err == nil {
		return nil
	}
	a.notePushback(*trailer)
	err, cut := c.outcome(ctx, err)
	if cut && a.client == c {
		a.left.Store(true)
	}
	return err
}

// NewStream implements grpc.ClientConnInterface. The stream counts as in
// flight until it ends as grpc.ClientConn.NewStream defines the end (see
// clientStream), or until its context ends, whichever comes first; its
// bookkeeping is released exactly once.
func (cc *clientConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	c := (*Client)(cc)
	c.calls.begin()
	raw, pc, err := c.ready()
	if err != nil {
		c.calls.end()
		return nil, err
	}
	rid := ""
	if a := attemptOf(ctx); a != nil {
		a.begin() // its trailer is not captured: the attempt's calls are not all known unsent
		rid = a.requestID
	} else {
		rid = identity.RequestIDFrom(ctx)
	}
	bctx, release := c.bind(ctx)
	s, err := raw.NewStream(c.target.Load().Outgoing(bctx, rid), desc, method, opts...)
	if err != nil {
		err, _ = c.outcome(bctx, err)
		release()
		pc.end()
		c.calls.end()
		return nil, err
	}
	cs := &clientStream{
		ClientStream:  s,
		c:             c,
		ctx:           bctx,
		serverStreams: desc == nil || desc.ServerStreams,
		release:       release,
		pc:            pc,
	}
	cs.stopAfter = context.AfterFunc(bctx, cs.endOnCancel)
	return cs, nil
}

// ready returns the raw connection of the next call, and the pooled
// connection it counts on (nil for the first), or why no call can be made.
func (c *Client) ready() (grpc.ClientConnInterface, *pooledConn, error) {
	if c.isGone() {
		return nil, nil, nodeErr(c.id, ErrNodeGone)
	}
	raw := c.conn()
	if raw == nil {
		return nil, nil, nodeErr(c.id, ErrServiceUnavailable)
	}
	if c.pool != nil {
		conn, pc := c.pool.pick(raw)
		return conn, pc, nil
	}
	return raw, nil, nil
}

// outcome maps the error of a call made with ctx: a call cut short
// because the node left (cut) returns ErrNodeGone, and a rejected
// identity marks the Client gone and returns ErrNodeGone too.
func (c *Client) outcome(ctx context.Context, err error) (_ error, cut bool) {
	switch {
	case err == nil || err == io.EOF || errors.Is(err, ErrNodeGone):
		return err, false
	case c.cutShort(ctx, err):
		return nodeErr(c.id, ErrNodeGone), true
	case identity.IsMismatch(err):
		c.reject()
		return nodeErr(c.id, errors.Wrapf(ErrNodeGone, "identity rejected: %s", status.Convert(err).Message())), false
	}
	return err, false
}

// cutShort reports whether err, the error of a call made with ctx, is
// that of a call ended because the node left: the node is gone, and the
// call ended as one does when its connection is closed under it
// (Canceled or Unavailable), or ctx was bound to the node's life (bind)
// and ended with it — not because ctx ended by the caller's hand.
func (c *Client) cutShort(ctx context.Context, err error) bool {
	if !c.isGone() {
		return false
	}
	if ctx.Err() != nil {
		return context.Cause(ctx) == ErrNodeGone
	}
	switch status.Code(err) {
	case codes.Canceled, codes.Unavailable:
		return !notServing(err) // the server's own answer, not the closing
	}
	return false
}

// clientStream releases the stream's bookkeeping (the call counted in
// flight on the Client and on its pooled connection, and the context tied
// to the node's life) once, when the stream ends. As grpc-go defines it
// (grpc.ClientConn.NewStream), a stream ends when RecvMsg returns an error
// (io.EOF included) or, for a method that does not stream responses
// (unary-like and client-streaming, desc.ServerStreams false), its one
// response; when SendMsg returns an error other than io.EOF (io.EOF means
// the server ended the stream: RecvMsg tells how); when Header returns an
// error; or when its context ends.
type clientStream struct {
	grpc.ClientStream
	c             *Client
	ctx           context.Context // from bind; ended by release
	serverStreams bool

	once      sync.Once // runs finish; a second caller waits for the first
	release   func()
	pc        *pooledConn
	stopAfter func() bool // stops endOnCancel
}

// end releases the stream's bookkeeping; only the first call does, and a
// call that finds the release under way (the context ended at the same
// moment) returns once it is done.
func (s *clientStream) end() {
	s.stopAfter()
	s.once.Do(s.finish)
}

// endOnCancel is end for the stream's context: it runs once, in its own
// goroutine, and stopAfter is of no use to it.
func (s *clientStream) endOnCancel() { s.once.Do(s.finish) }

func (s *clientStream) finish() {
	s.release()
	s.pc.end()
	s.c.calls.end()
}

// RecvMsg implements grpc.ClientStream.
func (s *clientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil || !s.serverStreams {
		err, _ = s.c.outcome(s.ctx, err)
		s.end()
	}
	return err
}

// SendMsg implements grpc.ClientStream.
func (s *clientStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err == nil || err == io.EOF {
		return err
	}
	err, _ = s.c.outcome(s.ctx, err)
	s.end()
	return err
}

// Header implements grpc.ClientStream.
func (s *clientStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if err != nil {
		err, _ = s.c.outcome(s.ctx, err)
		s.end()
	}
	return md, err
}
