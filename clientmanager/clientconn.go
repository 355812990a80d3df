package clientmanager

import (
	"context"
	"io"
	"sync"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// clientConn is what Client.Conn returns: it adds the target's identity to
// every call, cancels the call when the node leaves, and counts it so that
// the connection is drained before it is closed. With PoolSize > 1 it
// spreads calls over the node's pooled connections. A unary call made
// under an Invoke attempt captures its trailer, so that the server's
// retry pushback reaches Invoke.
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
	bctx := ctx
	if a == nil || a.client != c { // an Invoke attempt on c is bound already
		var release func()
		bctx, release = c.bind(ctx)
		defer release()
	}
	var trailer *metadata.MD
	if a != nil {
		trailer = new(metadata.MD)
		opts = append(opts[:len(opts):len(opts)], grpc.Trailer(trailer))
	}
	err = raw.Invoke(OutgoingIdentity(bctx, c.Session()), method, args, reply, opts...)
	if err != nil && a != nil {
		a.notePushback(*trailer)
	}
	return c.outcome(bctx, err)
}

// NewStream implements grpc.ClientConnInterface. The stream counts as in
// flight until it ends: RecvMsg returned an error (io.EOF included), or its
// context ended.
func (cc *clientConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	c := (*Client)(cc)
	c.calls.begin()
	raw, pc, err := c.ready()
	if err != nil {
		c.calls.end()
		return nil, err
	}
	bctx, release := c.bind(ctx)
	s, err := raw.NewStream(OutgoingIdentity(bctx, c.Session()), desc, method, opts...)
	if err != nil {
		err = c.outcome(bctx, err)
		release()
		pc.end()
		c.calls.end()
		return nil, err
	}
	cs := &clientStream{ClientStream: s, c: c, ctx: bctx}
	cs.finish = sync.OnceFunc(func() {
		release()
		pc.end()
		c.calls.end()
	})
	context.AfterFunc(bctx, cs.finish)
	return cs, nil
}

// ready returns the raw connection of the next call, and the pooled
// connection it counts on (nil for the first), or why no call can be made.
func (c *Client) ready() (grpc.ClientConnInterface, *pooledConn, error) {
	if c.life.Err() != nil {
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

// outcome maps the error of a call made with ctx (from bind): a call
// cancelled because the node left returns ErrNodeGone, and a rejected
// identity marks the Client gone and returns ErrNodeGone too.
func (c *Client) outcome(ctx context.Context, err error) error {
	switch {
	case err == nil || err == io.EOF || errors.Is(err, ErrNodeGone):
		return err
	case gone(ctx):
		return nodeErr(c.id, ErrNodeGone)
	case IsIdentityMismatch(err):
		c.reject()
		return nodeErr(c.id, errors.Wrapf(ErrNodeGone, "identity rejected: %s", status.Convert(err).Message()))
	}
	return err
}

// clientStream ends the stream's bookkeeping when the stream ends.
type clientStream struct {
	grpc.ClientStream
	c      *Client
	ctx    context.Context
	finish func()
}

// RecvMsg implements grpc.ClientStream.
func (s *clientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		err = s.c.outcome(s.ctx, err)
		s.finish()
	}
	return err
}

// SendMsg implements grpc.ClientStream.
func (s *clientStream) SendMsg(m any) error {
	return s.c.outcome(s.ctx, s.ClientStream.SendMsg(m))
}
