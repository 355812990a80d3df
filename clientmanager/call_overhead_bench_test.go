package clientmanager

import (
	"context"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/session"
)

// noopMethod is the one method of noopServiceDesc: it decodes an Empty
// and answers an Empty, nothing else.
const noopMethod = "/cmbench.Noop/Call"

var noopServiceDesc = grpc.ServiceDesc{
	ServiceName: "cmbench.Noop",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			var in emptypb.Empty
			if err := dec(&in); err != nil {
				return nil, err
			}
			if icpt == nil {
				return &in, nil
			}
			return icpt(ctx, &in, &grpc.UnaryServerInfo{FullMethod: noopMethod},
				func(context.Context, any) (any, error) { return &in, nil })
		},
	}},
}

// startNoopServer serves noopServiceDesc on 127.0.0.1 until the benchmark
// ends.
func startNoopServer(b *testing.B) string {
	b.Helper()
	srv := grpc.NewServer(serverOptions()...)
	srv.RegisterService(&noopServiceDesc, struct{}{})
	return serveLoopback(b, srv)
}

// noopConn is a Conn without a transport: a call returns at once, with
// no answer, and a stream ends at once. Over it a benchmark measures the
// manager's own cost of a call and nothing else.
type noopConn struct{}

func (noopConn) Invoke(context.Context, string, any, any, ...grpc.CallOption) error { return nil }

func (noopConn) NewStream(ctx context.Context, _ *grpc.StreamDesc, _ string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	return noopStream{ctx: ctx}, nil
}

func (noopConn) GetState() connectivity.State { return connectivity.Ready }

func (noopConn) WaitForStateChange(ctx context.Context, _ connectivity.State) bool {
	<-ctx.Done()
	return false
}

func (noopConn) Connect() {}

func (noopConn) Close() error { return nil }

// noopStream is noopConn's stream: nothing to send, nothing received.
type noopStream struct{ ctx context.Context }

func (noopStream) Header() (metadata.MD, error) { return nil, nil }
func (noopStream) Trailer() metadata.MD         { return nil }
func (noopStream) CloseSend() error             { return nil }
func (s noopStream) Context() context.Context   { return s.ctx }
func (noopStream) SendMsg(any) error            { return nil }
func (noopStream) RecvMsg(any) error            { return io.EOF }

// overheadRole returns a manager with a role of three online nodes at
// addr, connected by the manager's dialer (opts may set it), and the
// nodes' Clients.
func overheadRole(b *testing.B, addr string, opts ...Option) (*Manager, []*Client) {
	b.Helper()
	m, err := newManager(nil, DefaultConfig(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	bal, err := balancer.New(m.cfg.Balancer, balancer.WithClock(m.clock))
	if err != nil {
		b.Fatal(err)
	}
	shared := m.newRoleShared(testRole)
	m.reg.addRole(testRole, bal, shared)
	var clients []*Client
	for id := int64(1); id <= 3; id++ {
		s := session.Session{ServerID: id, ServerName: testRole, Address: addr, LeaseID: 100 + id, Incarnation: "0123456789abcdef"}
		c := m.newNodeClient(s, bal, shared, m.log)
		conn, err := m.dialer.Dial(context.Background(), s)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		c.setConn(conn)
		m.reg.addMember(c)
		m.reg.setState(c, NodeOnline, nil)
		clients = append(clients, c)
	}
	return m, clients
}

// benchCalls runs the four paths of one unary call, serial and parallel:
// direct on the node's connection itself; conn through its Client's Conn
// (identity, in-flight count); invoke through Invoke on the role of three
// nodes (route, breaker, bulkhead, balancer, attempt bounds, retry
// budget, statistics, request ID); roleconn through RoleConn, as a
// generated stub calls it.
func benchCalls(b *testing.B, m *Manager, clients []*Client, method string) {
	ctx := context.Background()
	in, out := new(emptypb.Empty), new(emptypb.Empty)
	raw, viaConn, rc := clients[0].conn(), clients[0].Conn(), m.RoleConn(testRole)
	call := func(ctx context.Context, c *Client) error { return c.Conn().Invoke(ctx, method, in, out) }
	for _, bc := range []struct {
		name string
		call func() error
	}{
		{"direct", func() error { return raw.Invoke(ctx, method, in, out) }},
		{"conn", func() error { return viaConn.Invoke(ctx, method, in, out) }},
		{"invoke", func() error { return m.Invoke(ctx, testRole, call) }},
		{"roleconn", func() error { return rc.Invoke(ctx, method, in, out) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := bc.call(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := bc.call(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkCallOverhead measures what the manager adds to one unary call:
// the four paths of benchCalls over the same no-op connection (noopConn,
// made by the manager's Dialer), so that the differences with direct are
// the manager's own time and allocations.
func BenchmarkCallOverhead(b *testing.B) {
	m, clients := overheadRole(b, "192.0.2.1:9", WithDialer(dialerFunc(func(context.Context, session.Session) (Conn, error) {
		return noopConn{}, nil
	})))
	benchCalls(b, m, clients, noopMethod)
}

// BenchmarkCallLoopback is BenchmarkCallOverhead over the default
// dialer's connections to a no-op gRPC server on 127.0.0.1: client and
// server run in this process, so the allocations of both count, those of
// the server's identity check included.
func BenchmarkCallLoopback(b *testing.B) {
	m, clients := overheadRole(b, startNoopServer(b))
	benchCalls(b, m, clients, noopMethod)
}
