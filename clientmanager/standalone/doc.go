// Package standalone serves gRPC services in process, for single-binary
// deployments and tests: a Server holds registered services, as a
// grpc.Server does, and is a clientmanager.Dialer whose connections call
// them directly, with no listener and no network.
//
//	sa := standalone.New(standalone.WithUnaryInterceptor(
//		identity.UnaryServerInterceptor(self)))
//	healthpb.RegisterHealthServer(sa, health.NewServer())
//	m, err := clientmanager.New(cli, cfg, clientmanager.WithDialer(sa))
//
// The options are server options: WithUnaryInterceptor and
// WithStreamInterceptor wrap the registered handlers, as
// grpc.ChainUnaryInterceptor does on a grpc.Server. Calls keep the
// semantics call sites can observe over gRPC (copied messages, metadata,
// status errors, headers and trailers, cancellation); Server lists them.
package standalone
