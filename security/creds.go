package security

import (
	"context"
	"net"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/credentials"
)

// ClientCredentials are the gRPC transport credentials of a manager: each
// connection expects the node's certificate to name the role its
// authority names (dial with grpc.WithAuthority(Authority(cluster,
// role)); an authority naming no role of the cluster fails the handshake).
// See TLS.ClientConfig.
type ClientCredentials struct {
	t    *TLS
	info credentials.ProtocolInfo
}

// ClientCredentials returns the client credentials of t.
func (t *TLS) ClientCredentials() *ClientCredentials {
	return &ClientCredentials{t: t, info: credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.2"}}
}

// Authority returns the authority to dial a node of role with.
func (c *ClientCredentials) Authority(role string) string { return Authority(c.t.cfg.Cluster, role) }

// ClientHandshake implements credentials.TransportCredentials.
func (c *ClientCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	role, ok := RoleFromAuthority(c.t.cfg.Cluster, authority)
	if !ok {
		return nil, nil, errors.Newf("security: authority %q names no role of cluster %q: dial with grpc.WithAuthority(security.Authority(cluster, role))",
			authority, c.t.cfg.Cluster)
	}
	return credentials.NewTLS(c.t.ClientConfig(role)).ClientHandshake(ctx, authority, conn)
}

// ServerHandshake implements credentials.TransportCredentials; client
// credentials do not serve.
func (c *ClientCredentials) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("security: ClientCredentials cannot serve; use TLS.ServerCredentials")
}

// Info implements credentials.TransportCredentials.
func (c *ClientCredentials) Info() credentials.ProtocolInfo { return c.info }

// Clone implements credentials.TransportCredentials.
func (c *ClientCredentials) Clone() credentials.TransportCredentials {
	cc := *c
	return &cc
}

// OverrideServerName implements credentials.TransportCredentials; the name
// comes from the authority of each connection.
//
// Deprecated: use grpc.WithAuthority.
func (c *ClientCredentials) OverrideServerName(string) error { return nil }

// ServerCredentials returns the gRPC server credentials of t (see
// ServerConfig).
func (t *TLS) ServerCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(t.ServerConfig())
}
