// Package echo is the examples' tiny gRPC service, written without code
// generation: Echo answers its request, Slow answers after the duration it
// is asked for (or when the call is cancelled).
package echo

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ServiceName is the service's full name.
const ServiceName = "coordkit.examples.Echo"

// Full method names.
const (
	EchoMethod = "/" + ServiceName + "/Echo"
	SlowMethod = "/" + ServiceName + "/Slow"
)

// Server implements the service.
type Server struct {
	// OnSlow, if set, is called when a Slow call starts.
	OnSlow func()
}

type server interface {
	echo(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
	slow(context.Context, *durationpb.Duration) (*emptypb.Empty, error)
}

func (s *Server) echo(_ context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	return in, nil
}

func (s *Server) slow(ctx context.Context, in *durationpb.Duration) (*emptypb.Empty, error) {
	if s.OnSlow != nil {
		s.OnSlow()
	}
	t := time.NewTimer(in.AsDuration())
	defer t.Stop()
	select {
	case <-t.C:
		return &emptypb.Empty{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Register adds s to r.
func Register(r grpc.ServiceRegistrar, s *Server) { r.RegisterService(&serviceDesc, s) }

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*server)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Echo", Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(server).echo(ctx, req.(*wrapperspb.StringValue))
			}
			if ic == nil {
				return h(ctx, in)
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: EchoMethod}, h)
		}},
		{MethodName: "Slow", Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(durationpb.Duration)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(server).slow(ctx, req.(*durationpb.Duration))
			}
			if ic == nil {
				return h(ctx, in)
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: SlowMethod}, h)
		}},
	},
}

// Echo calls Echo on cc.
func Echo(ctx context.Context, cc grpc.ClientConnInterface, msg string, opts ...grpc.CallOption) (string, error) {
	out := new(wrapperspb.StringValue)
	err := cc.Invoke(ctx, EchoMethod, wrapperspb.String(msg), out, opts...)
	return out.GetValue(), err
}

// Slow calls Slow on cc, asking it to take d.
func Slow(ctx context.Context, cc grpc.ClientConnInterface, d time.Duration, opts ...grpc.CallOption) error {
	return cc.Invoke(ctx, SlowMethod, durationpb.New(d), new(emptypb.Empty), opts...)
}
