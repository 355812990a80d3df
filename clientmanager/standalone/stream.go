package standalone

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// NewStream starts a stream's handler in a goroutine owned by the
// connection and returns the caller's end of an in-memory stream pair.
// Messages are handed over unbuffered, so each side's SendMsg returns once
// the other side took the message, the ends' contexts bound every wait, and
// the handler's goroutine ends when the handler returns, which it does when
// the caller's context ends or the connection is closed.
func (c *conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string,
	_ ...grpc.CallOption) (grpc.ClientStream, error) {
	m, err := c.owner.lookup(method)
	if err != nil {
		return nil, err
	}
	if m.stream == nil {
		return nil, status.Errorf(codes.Unimplemented, "standalone: %s is a unary method, not a stream", method)
	}
	if err := c.callable(ctx); err != nil {
		return nil, err
	}
	clientStreams := m.stream.ClientStreams
	if desc != nil {
		clientStreams = desc.ClientStreams
	}
	st := &pipe{
		clientCtx:     ctx,
		clientStreams: clientStreams,
		tr:            &transport{method: method, sent: make(chan struct{})},
		toServer:      make(chan proto.Message),
		toClient:      make(chan proto.Message),
		sendClosed:    make(chan struct{}),
		done:          make(chan struct{}),
	}
	st.serverCtx, st.cancel = c.serverContext(ctx, st.tr)

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		st.cancel()
		return nil, errClosing
	}
	c.handler.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.handler.Done()
		st.finish(c, c.runStream(m, st))
	}()
	return clientStream{st}, nil
}

// runStream calls the handler through the stream interceptors.
func (c *conn) runStream(m *entry, st *pipe) error {
	ss := serverStream{st}
	if c.owner.stream == nil {
		return m.stream.Handler(m.impl, ss)
	}
	info := &grpc.StreamServerInfo{
		FullMethod:     st.tr.method,
		IsClientStream: m.stream.ClientStreams,
		IsServerStream: m.stream.ServerStreams,
	}
	return c.owner.stream(m.impl, ss, info, m.stream.Handler)
}

// pipe is the state shared by the two ends of a stream.
type pipe struct {
	clientCtx     context.Context // the caller's
	clientStreams bool            // as the caller's StreamDesc says
	serverCtx     context.Context // the handler's: ends with clientCtx, Close or the handler's return
	cancel        context.CancelFunc
	tr            *transport

	toServer   chan proto.Message
	toClient   chan proto.Message
	sendClosed chan struct{} // closed by CloseSend
	closeSend  sync.Once
	sentLast   atomic.Bool

	done chan struct{} // closed once the handler returned and err is set
	err  error         // the stream's final status; nil is OK
}

// finish records the handler's result as the stream's status, the way the
// caller would see it over gRPC, and releases the server context.
func (st *pipe) finish(c *conn, herr error) {
	switch {
	case st.clientCtx.Err() != nil:
		st.err = status.FromContextError(st.clientCtx.Err()).Err()
	case c.ctx.Err() != nil:
		st.err = errClosing
	case herr != nil:
		st.err = toStatusError(herr)
	}
	st.tr.sendHeader()
	close(st.done)
	st.cancel()
}

// clientStream is the caller's end.
type clientStream struct{ st *pipe }

var _ grpc.ClientStream = clientStream{}

// Header waits for the handler's header (sent explicitly, with the first
// message or at the end of the stream).
func (cs clientStream) Header() (metadata.MD, error) {
	select {
	case <-cs.st.tr.sent:
		h, _ := cs.st.tr.snapshot()
		return h, nil
	case <-cs.st.clientCtx.Done():
		return nil, status.FromContextError(cs.st.clientCtx.Err()).Err()
	}
}

// Trailer returns the handler's trailer once the stream has ended.
func (cs clientStream) Trailer() metadata.MD {
	select {
	case <-cs.st.done:
		_, t := cs.st.tr.snapshot()
		return t
	default:
		return nil
	}
}

// CloseSend tells the handler that no more messages come: its RecvMsg
// returns io.EOF.
func (cs clientStream) CloseSend() error {
	cs.st.sentLast.Store(true)
	cs.st.closeSend.Do(func() { close(cs.st.sendClosed) })
	return nil
}

// Context returns the caller's context.
func (cs clientStream) Context() context.Context { return cs.st.clientCtx }

// SendMsg hands a copy of m to the handler. Once the handler has returned
// it returns io.EOF, or nil when the caller's StreamDesc is not client
// streaming (as grpc does, for generated code); RecvMsg then gives the
// stream's status.
func (cs clientStream) SendMsg(m any) error {
	if cs.st.sentLast.Load() {
		return status.Error(codes.Internal, "standalone: SendMsg called after CloseSend")
	}
	msg, err := cloneMessage(m)
	if err != nil {
		return err
	}
	select {
	case cs.st.toServer <- msg:
		return nil
	case <-cs.st.done:
		if !cs.st.clientStreams {
			return nil
		}
		return io.EOF
	case <-cs.st.clientCtx.Done():
		return status.FromContextError(cs.st.clientCtx.Err()).Err()
	}
}

// RecvMsg receives the handler's next message into m; at the end of the
// stream it returns io.EOF, or the stream's status when that is not OK.
func (cs clientStream) RecvMsg(m any) error {
	select {
	case msg := <-cs.st.toClient:
		return resetAndCopy(m, msg)
	case <-cs.st.done:
		if cs.st.err != nil {
			return cs.st.err
		}
		return io.EOF
	case <-cs.st.clientCtx.Done():
		return status.FromContextError(cs.st.clientCtx.Err()).Err()
	}
}

// serverStream is the handler's end.
type serverStream struct{ st *pipe }

var _ grpc.ServerStream = serverStream{}

// SetHeader merges md into the header; it fails once the header was sent.
func (ss serverStream) SetHeader(md metadata.MD) error { return ss.st.tr.SetHeader(md) }

// SendHeader sends the header with md merged in.
func (ss serverStream) SendHeader(md metadata.MD) error { return ss.st.tr.SendHeader(md) }

// SetTrailer merges md into the trailer sent when the handler returns.
func (ss serverStream) SetTrailer(md metadata.MD) { _ = ss.st.tr.SetTrailer(md) }

// Context returns the handler's context.
func (ss serverStream) Context() context.Context { return ss.st.serverCtx }

// SendMsg hands a copy of m to the caller, sending the header first.
func (ss serverStream) SendMsg(m any) error {
	msg, err := cloneMessage(m)
	if err != nil {
		return err
	}
	ss.st.tr.sendHeader()
	select {
	case ss.st.toClient <- msg:
		return nil
	case <-ss.st.serverCtx.Done():
		return status.FromContextError(ss.st.serverCtx.Err()).Err()
	}
}

// RecvMsg receives the caller's next message into m; io.EOF after CloseSend.
func (ss serverStream) RecvMsg(m any) error {
	select {
	case msg := <-ss.st.toServer:
		return resetAndCopy(m, msg)
	case <-ss.st.sendClosed: // toServer is unbuffered: nothing sent before is left
		return io.EOF
	case <-ss.st.serverCtx.Done():
		return status.FromContextError(ss.st.serverCtx.Err()).Err()
	}
}

// cloneMessage returns a deep copy of m, which must be a proto message.
func cloneMessage(m any) (proto.Message, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, status.Errorf(codes.Internal, "standalone: %T is not a proto.Message", m)
	}
	return proto.Clone(pm), nil
}

// resetAndCopy replaces m's content with msg's.
func resetAndCopy(m any, msg proto.Message) error {
	return copyMessage(m, msg, true)
}
