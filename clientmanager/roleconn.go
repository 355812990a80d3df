package clientmanager

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/identity"
)

// RoleConn returns a connection to role: generated stubs work on it
// unchanged (pb.NewFooClient(m.RoleConn("querynode"))), and every call
// has Invoke's semantics — routing, circuit breakers, bulkheads, retries
// when safe (pass Idempotent, Attempts or AttemptTimeout among the
// call's grpc options to change them), the fast fail, and errors that
// are ErrServiceUnavailable for errors.Is when their code is
// Unavailable. role need not be a dependency yet; calls fail fast until
// it is and a node is available.
//
// A stream goes to one node, chosen and admitted as an attempt of Invoke
// is; it is opened again on another node only when opening it failed
// before anything was sent, and never retried once open. It holds its
// node's bulkhead slot, and counts in the balancer, until it ends as
// grpc.ClientConn.NewStream defines the end (its last response, an
// error, or its context's end). It has no attempt timeout: its context
// bounds it.
func (m *Manager) RoleConn(role string) grpc.ClientConnInterface {
	return &roleConn{m: m, role: role}
}

// roleConn is what RoleConn returns.
type roleConn struct {
	m    *Manager
	role string
}

// target returns the call's target, or the error of the fast fail.
func (rc *roleConn) target() (target, error) {
	s := rc.m.reg.load()
	v := s.role(rc.role)
	if v == nil || len(v.ids) == 0 {
		return target{}, rc.m.fastFail(rc.role, roleUnavailable(s, v, rc.role))
	}
	return target{role: rc.role, shared: v.shared, view: v}, nil
}

// Invoke implements grpc.ClientConnInterface.
func (rc *roleConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	tg, err := rc.target()
	if err != nil {
		return err
	}
	o := grpcCallOptions(opts)
	o.single = true
	return rc.m.invoke(ctx, tg, func(ctx context.Context, c *Client) error {
		return c.Conn().Invoke(ctx, method, args, reply, opts...)
	}, o)
}

// NewStream implements grpc.ClientConnInterface.
func (rc *roleConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (cs grpc.ClientStream, err error) {
	tg, err := rc.target()
	if err != nil {
		return nil, err
	}
	m := rc.m
	if identity.RequestIDFrom(ctx) == "" {
		ctx = identity.WithRequestID(ctx, m.reqIDs.Next())
	}
	err = m.run(ctx, tg, grpcCallOptions(opts), func(c *Client, adm admission, _, _ int, _ time.Time) attemptResult {
		var r attemptResult
		cs, r = m.openStream(ctx, c, adm, desc, method, opts)
		return r
	})
	if err != nil {
		m.callEnded(tg, err)
		return nil, err
	}
	return cs, nil
}

// openStream opens a stream on c, admitted with adm. The stream holds the
// admission until it ends.
func (m *Manager) openStream(ctx context.Context, c *Client, adm admission, desc *grpc.StreamDesc, method string, opts []grpc.CallOption) (grpc.ClientStream, attemptResult) {
	if refused := c.refusal(); refused != nil {
		adm.abandon(c)
		return nil, attemptResult{err: refused, outcome: breaker.Excluded, unsent: true, elsewhere: true}
	}
	var bc balancer.Call
	if c.bal != nil {
		bc = c.bal.Start(c.id)
	}
	start := m.clock.Now()
	cs, err := c.Conn().NewStream(ctx, desc, method, opts...)
	if err != nil {
		// Opening a stream waits for no answer: it failed in the client,
		// before the server could start on it, unless the node left.
		r := m.judge(ctx, ctx, c, newAttemptCtx(ctx, c, ""), err, c.isGone())
		if status.Code(err) == codes.Unavailable && c.overGRPC() && !errors.Is(err, ErrNodeGone) {
			r.unsent = true
		}
		adm.done(c, r.outcome)
		bc.Done(m.clock.Since(start), balancerError(r.outcome, err))
		return nil, r
	}
	s := &roleStream{ClientStream: cs, m: m, c: c, ctx: ctx, serverStreams: desc == nil || desc.ServerStreams,
		adm: adm, bc: bc, start: start}
	s.stop = context.AfterFunc(ctx, func() { s.end(ctx.Err()) })
	return s, attemptResult{}
}

// roleStream is a stream opened through RoleConn: it ends its node's
// admission, and reports its outcome, when the stream ends as
// grpc.ClientConn.NewStream defines the end: RecvMsg returned an error
// (io.EOF included) or, for a method that does not stream responses, its
// one response; SendMsg returned an error other than io.EOF; Header
// returned an error; or its context ended.
type roleStream struct {
	grpc.ClientStream
	m             *Manager
	c             *Client
	ctx           context.Context
	serverStreams bool
	adm           admission
	bc            balancer.Call
	start         time.Time
	stop          func() bool
	once          sync.Once
}

// RecvMsg implements grpc.ClientStream; an error other than io.EOF names
// the role and node.
func (s *roleStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	if err != nil || !s.serverStreams {
		s.end(err)
		s.stop()
	}
	return s.named(err)
}

// SendMsg implements grpc.ClientStream; an error other than io.EOF (the
// stream ended: RecvMsg tells how) ends the stream and names the role and
// node.
func (s *roleStream) SendMsg(msg any) error {
	err := s.ClientStream.SendMsg(msg)
	if err != nil && err != io.EOF {
		s.end(err)
		s.stop()
	}
	return s.named(err)
}

// Header implements grpc.ClientStream; an error ends the stream.
func (s *roleStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if err != nil {
		s.end(err)
		s.stop()
	}
	return md, s.named(err)
}

// named returns err, other than nil and io.EOF, as a *NodeError of the
// stream's node.
func (s *roleStream) named(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return callErr(s.c.role, s.c.id, err)
}

// end records the stream's outcome once: io.EOF is a success.
func (s *roleStream) end(err error) {
	s.once.Do(func() {
		if err == io.EOF {
			err = nil
		}
		r := s.m.judge(s.ctx, s.ctx, s.c, newAttemptCtx(s.ctx, s.c, ""), err, true)
		latency := s.m.clock.Since(s.start)
		s.adm.done(s.c, r.outcome)
		s.bc.Done(latency, balancerError(r.outcome, err))
		s.m.metrics.call(s.c.role, status.Code(err))
	})
}
