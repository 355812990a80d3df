package standalone_test

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A hand-written service, shaped like generated code, for what the health
// service does not exercise: a bidirectional stream and custom handlers.
const (
	echoUnary = "/test.Echo/Unary"
	echoChat  = "/test.Echo/Chat"
)

type echoServer interface{ echo() }

type echoImpl struct{}

func (echoImpl) echo() {}

type echoHandlers struct {
	unary func(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
	chat  func(ss grpc.ServerStream) error
}

func echoDesc(h echoHandlers) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "test.Echo",
		HandlerType: (*echoServer)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Unary",
			Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.StringValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				call := func(ctx context.Context, req any) (any, error) {
					return h.unary(ctx, req.(*wrapperspb.StringValue))
				}
				if icpt == nil {
					return call(ctx, in)
				}
				return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: echoUnary}, call)
			},
		}},
		Streams: []grpc.StreamDesc{{
			StreamName:    "Chat",
			Handler:       func(_ any, ss grpc.ServerStream) error { return h.chat(ss) },
			ServerStreams: true,
			ClientStreams: true,
		}},
	}
}
