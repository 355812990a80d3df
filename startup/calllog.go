package startup

import (
	"context"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/identity"
)

// callLogKey is the context key under which a served call's context holds
// the Runner's logger.
type callLogKey struct{}

// Logger returns the logger of the call a handler serves with ctx: the
// Runner's logger (with its role) with the call's method and, when the
// call carries one, its request ID (identity.RequestIDFrom) as
// correlation_id, so that the lines a handler logs can be followed back to
// the caller's request. It needs the Runner's ServerOptions; on another
// context it returns a no-op logger. The fields are added when Logger is
// called, not on every call served.
func Logger(ctx context.Context) *zap.Logger {
	log, ok := ctx.Value(callLogKey{}).(*zap.Logger)
	if !ok {
		return zap.NewNop()
	}
	fields := make([]zap.Field, 0, 2)
	if m, ok := grpc.Method(ctx); ok {
		fields = append(fields, zap.String("method", m))
	}
	if id := identity.RequestIDFrom(ctx); id != "" {
		fields = append(fields, zap.String("correlation_id", id))
	}
	return log.With(fields...)
}

// logUnary puts the Runner's logger in the call's context (see Logger).
func (r *Runner) logUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(context.WithValue(ctx, callLogKey{}, r.log), req)
}

// logStream puts the Runner's logger in the stream's context (see Logger).
func (r *Runner) logStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &loggedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callLogKey{}, r.log)})
}

// loggedStream is a ServerStream whose context holds the Runner's logger.
type loggedStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the stream's context with the Runner's logger.
func (s *loggedStream) Context() context.Context { return s.ctx }
