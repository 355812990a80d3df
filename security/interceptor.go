package security

import (
	"context"
	"crypto/x509"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// PeerCertificate returns the verified certificate of ctx's caller, or nil
// when the call did not come over TLS with a client certificate.
func PeerCertificate(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	if len(info.State.VerifiedChains) > 0 && len(info.State.VerifiedChains[0]) > 0 {
		return info.State.VerifiedChains[0][0]
	}
	return nil
}

// CheckCaller returns nil when ctx's caller presented a verified
// certificate naming one of roles of cluster, or else the status of a
// *RoleError: codes.Unauthenticated without such a certificate,
// codes.PermissionDenied with another role's.
func CheckCaller(ctx context.Context, cluster string, roles []string) error {
	if err := VerifyRole(cluster, PeerCertificate(ctx), roles...); err != nil {
		return err.(*RoleError).GRPCStatus().Err()
	}
	return nil
}

// UnaryServerInterceptor rejects calls whose caller's certificate names
// none of roles of cluster (see CheckCaller). Every method is checked,
// the health service included.
func UnaryServerInterceptor(cluster string, roles ...string) grpc.UnaryServerInterceptor {
	roles = slices.Clone(roles)
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := CheckCaller(ctx, cluster, roles); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streams.
func StreamServerInterceptor(cluster string, roles ...string) grpc.StreamServerInterceptor {
	roles = slices.Clone(roles)
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := CheckCaller(ss.Context(), cluster, roles); err != nil {
			return err
		}
		return h(srv, ss)
	}
}

// ServerOptions returns the options of a node's gRPC server: t's server
// credentials and, when callerRoles is not empty, the check that every
// caller presents a certificate of one of them.
func (t *TLS) ServerOptions(callerRoles ...string) []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.Creds(t.ServerCredentials())}
	if len(callerRoles) > 0 {
		opts = append(opts,
			grpc.ChainUnaryInterceptor(UnaryServerInterceptor(t.cfg.Cluster, callerRoles...)),
			grpc.ChainStreamInterceptor(StreamServerInterceptor(t.cfg.Cluster, callerRoles...)))
	}
	return opts
}
