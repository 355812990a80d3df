package standalone

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/errors"
	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrInvalidService is returned by Server.Dial when a service given to
// RegisterService was invalid: a nil descriptor, an implementation that does
// not satisfy the descriptor's HandlerType, a method without a handler, or
// a service name registered twice. The first such registration is reported.
var ErrInvalidService = errors.New("standalone: invalid service registration")

// Server is a clientmanager.Dialer whose connections serve registered
// in-process gRPC services directly, with no listener and no network, so a
// single-binary deployment uses the same call sites as a distributed one.
//
// Register services first, as on a grpc.Server, then hand the Server to
// the manager with clientmanager.WithDialer. Every connection it dials
// reaches the same services, whatever the session's address.
//
// Calls behave as over gRPC where call sites can tell: requests and replies
// are copied (proto.Merge), so caller and handler never share a message; the
// caller's outgoing metadata is the handler's incoming metadata, so server
// interceptors such as identity.UnaryServerInterceptor work; handler errors
// reach the caller as status errors (details kept, wrapped chain dropped);
// grpc.SetHeader, grpc.SetTrailer, grpc.Header and grpc.Trailer work. Other
// call options are ignored. Unlike over a network, the handler's context
// also carries the caller's context values.
//
// A method that is not registered fails with codes.Unimplemented, as does a
// unary method called with NewStream or a stream called with Invoke. Unary
// handlers run in the caller's goroutine; stream handlers in a goroutine
// owned by the connection. Closing a connection cancels its calls in flight
// and later calls fail with codes.Canceled, as on a closed grpc.ClientConn.
type Server struct {
	unary  grpc.UnaryServerInterceptor  // chained; nil when none
	stream grpc.StreamServerInterceptor // chained; nil when none

	mu      sync.Mutex                        // serialises RegisterService
	methods atomic.Pointer[map[string]*entry] // by full method name; copy on write
	names   map[string]bool                   // registered service names; under mu
	err     error                             // first registration error; under mu
}

// entry is one registered method: unary or stream.
type entry struct {
	impl   any
	unary  *grpc.MethodDesc
	stream *grpc.StreamDesc
}

// Option configures a Server.
type Option func(*options)

type options struct {
	unary  []grpc.UnaryServerInterceptor
	stream []grpc.StreamServerInterceptor
}

// WithUnaryInterceptor adds a server interceptor to every unary call.
// Interceptors run in the order they are given, the first outermost, as
// with grpc.ChainUnaryInterceptor.
func WithUnaryInterceptor(i grpc.UnaryServerInterceptor) Option {
	return func(o *options) {
		if i != nil {
			o.unary = append(o.unary, i)
		}
	}
}

// WithStreamInterceptor adds a server interceptor to every stream.
// Interceptors run in the order they are given, the first outermost.
func WithStreamInterceptor(i grpc.StreamServerInterceptor) Option {
	return func(o *options) {
		if i != nil {
			o.stream = append(o.stream, i)
		}
	}
}

// New returns a Server with no services. The zero Server is one with no
// interceptors.
func New(opts ...Option) *Server {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return &Server{
		unary:  chainUnaryServer(o.unary),
		stream: chainStreamServer(o.stream),
	}
}

var _ grpc.ServiceRegistrar = (*Server)(nil)

// RegisterService registers a service and its implementation, as
// grpc.Server.RegisterService does. It may be called at any time; calls on
// connections already dialled see the service from then on. An invalid
// registration is ignored and reported by Dial as ErrInvalidService.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.validate(desc, impl); err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	var old map[string]*entry
	if p := s.methods.Load(); p != nil {
		old = *p
	}
	next := make(map[string]*entry, len(old)+len(desc.Methods)+len(desc.Streams))
	for k, v := range old {
		next[k] = v
	}
	prefix := "/" + desc.ServiceName + "/"
	for i := range desc.Methods {
		next[prefix+desc.Methods[i].MethodName] = &entry{impl: impl, unary: &desc.Methods[i]}
	}
	for i := range desc.Streams {
		next[prefix+desc.Streams[i].StreamName] = &entry{impl: impl, stream: &desc.Streams[i]}
	}
	if s.names == nil {
		s.names = make(map[string]bool)
	}
	s.names[desc.ServiceName] = true
	s.methods.Store(&next)
}

// validate checks a registration the way grpc.Server does; under s.mu.
func (s *Server) validate(desc *grpc.ServiceDesc, impl any) error {
	if desc == nil {
		return errors.Wrap(ErrInvalidService, "nil ServiceDesc")
	}
	if s.names[desc.ServiceName] {
		return errors.Wrapf(ErrInvalidService, "service %q registered twice", desc.ServiceName)
	}
	if impl != nil {
		ht := reflect.TypeOf(desc.HandlerType)
		if ht == nil || ht.Kind() != reflect.Pointer || ht.Elem().Kind() != reflect.Interface {
			return errors.Wrapf(ErrInvalidService, "service %q: HandlerType (%T) is not a pointer to an interface",
				desc.ServiceName, desc.HandlerType)
		}
		if !reflect.TypeOf(impl).Implements(ht.Elem()) {
			return errors.Wrapf(ErrInvalidService, "service %q: handler %T does not implement %v",
				desc.ServiceName, impl, ht.Elem())
		}
	}
	for _, m := range desc.Methods {
		if m.Handler == nil {
			return errors.Wrapf(ErrInvalidService, "service %q: method %q has no handler", desc.ServiceName, m.MethodName)
		}
	}
	for _, m := range desc.Streams {
		if m.Handler == nil {
			return errors.Wrapf(ErrInvalidService, "service %q: stream %q has no handler", desc.ServiceName, m.StreamName)
		}
	}
	return nil
}

// Dial returns a connection to the registered services. It is READY at
// once and stays READY until closed; s is not used beyond that. Dial fails
// when ctx has ended or a registration was invalid.
func (s *Server) Dial(ctx context.Context, _ session.Session) (clientmanager.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, errors.Wrap(err, "standalone: dial")
	}
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return newConn(s), nil
}

// lookup finds a registered method by its full name, "/pkg.Service/Method".
func (s *Server) lookup(fullMethod string) (*entry, error) {
	if p := s.methods.Load(); p != nil {
		if m, ok := (*p)[fullMethod]; ok {
			return m, nil
		}
	}
	return nil, status.Errorf(codes.Unimplemented, "standalone: unknown method %s", fullMethod)
}

// chainUnaryServer chains interceptors, the first outermost; nil when none.
func chainUnaryServer(ints []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(ints) {
	case 0:
		return nil
	case 1:
		return ints[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return ints[0](ctx, req, info, unaryChainHandler(ints, 0, info, h))
	}
}

func unaryChainHandler(ints []grpc.UnaryServerInterceptor, cur int, info *grpc.UnaryServerInfo,
	final grpc.UnaryHandler) grpc.UnaryHandler {
	if cur == len(ints)-1 {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return ints[cur+1](ctx, req, info, unaryChainHandler(ints, cur+1, info, final))
	}
}

// chainStreamServer chains interceptors, the first outermost; nil when none.
func chainStreamServer(ints []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	switch len(ints) {
	case 0:
		return nil
	case 1:
		return ints[0]
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return ints[0](srv, ss, info, streamChainHandler(ints, 0, info, h))
	}
}

func streamChainHandler(ints []grpc.StreamServerInterceptor, cur int, info *grpc.StreamServerInfo,
	final grpc.StreamHandler) grpc.StreamHandler {
	if cur == len(ints)-1 {
		return final
	}
	return func(srv any, ss grpc.ServerStream) error {
		return ints[cur+1](srv, ss, info, streamChainHandler(ints, cur+1, info, final))
	}
}
