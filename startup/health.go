package startup

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// healthService is the standard gRPC health service (grpc/health) with one
// change: its Watch streams end when the server is about to stop, so they
// do not hold a graceful stop until its timeout.
type healthService struct {
	*health.Server
	role   string
	ending context.Context // done when Watch streams must end
	endAll context.CancelFunc
}

func newHealthService(role string) *healthService {
	ctx, cancel := context.WithCancel(context.Background())
	h := &healthService{Server: health.NewServer(), role: role, ending: ctx, endAll: cancel}
	h.set(false) // NewServer reports "" as SERVING
	return h
}

// register adds the service to srv, which must not be serving yet.
func (h *healthService) register(srv *grpc.Server) {
	srv.RegisterService(&healthpb.Health_ServiceDesc, h)
}

// set reports SERVING or NOT_SERVING for the overall service "" and for
// the role's name.
func (h *healthService) set(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.SetServingStatus("", st)
	h.SetServingStatus(h.role, st)
}

// endWatches ends every Watch stream, present and future, with
// codes.Unavailable. Check still answers.
func (h *healthService) endWatches() { h.endAll() }

// Watch serves grpc/health's Watch until the client leaves or endWatches.
func (h *healthService) Watch(in *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(h.ending, cancel)
	defer stop()
	err := h.Server.Watch(in, &watchStream{Health_WatchServer: stream, ctx: ctx})
	if h.ending.Err() != nil && stream.Context().Err() == nil {
		return status.Error(codes.Unavailable, "startup: server stopping")
	}
	return err
}

// watchStream is a Watch stream whose context also ends with the server.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (s *watchStream) Context() context.Context { return s.ctx }
