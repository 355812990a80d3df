package startup

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// testService is a small hand-written gRPC service for the tests: Echo and
// Admin answer at once, Block answers when released, Stream is a server
// stream that echoes its request twice.
type testService struct {
	started chan struct{} // one value per Block call that started
	release chan struct{} // closed to let Block calls return
}

func newTestService() *testService {
	return &testService{started: make(chan struct{}, 16), release: make(chan struct{})}
}

type testServer interface{ block(context.Context) error }

const testServiceName = "startup.test.Test"

const (
	methodEcho   = "/" + testServiceName + "/Echo"
	methodAdmin  = "/" + testServiceName + "/Admin"
	methodBlock  = "/" + testServiceName + "/Block"
	methodStream = "/" + testServiceName + "/Stream"
)

var testServiceDesc = grpc.ServiceDesc{
	ServiceName: testServiceName,
	HandlerType: (*testServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Echo", Handler: testUnary(methodEcho, nil)},
		{MethodName: "Admin", Handler: testUnary(methodAdmin, nil)},
		{MethodName: "Block", Handler: testUnary(methodBlock, testServer.block)},
	},
	Streams: []grpc.StreamDesc{{StreamName: "Stream", Handler: testStream, ServerStreams: true}},
}

func (s *testService) block(ctx context.Context) error {
	s.started <- struct{}{}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// testUnary returns a handler that runs before (if any) and echoes its
// request, the way generated code calls the interceptor.
func testUnary(method string, before func(testServer, context.Context) error) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, req any) (any, error) {
			if before != nil {
				if err := before(srv.(testServer), ctx); err != nil {
					return nil, err
				}
			}
			return req, nil
		}
		if ic == nil {
			return h(ctx, in)
		}
		return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, h)
	}
}

func testStream(_ any, stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	for range 2 {
		if err := stream.SendMsg(in); err != nil {
			return err
		}
	}
	return nil
}

// callUnary calls a unary method of the test service.
func callUnary(ctx context.Context, cc grpc.ClientConnInterface, method string) error {
	out := new(wrapperspb.StringValue)
	return cc.Invoke(ctx, method, wrapperspb.String("hi"), out)
}

// callStream calls Stream and reads both answers.
func callStream(ctx context.Context, cc grpc.ClientConnInterface) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := cc.NewStream(ctx, &testServiceDesc.Streams[0], methodStream)
	if err != nil {
		return err
	}
	if err := st.SendMsg(wrapperspb.String("hi")); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	for range 2 {
		if err := st.RecvMsg(new(wrapperspb.StringValue)); err != nil {
			return err
		}
	}
	return nil
}
