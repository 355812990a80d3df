package clientmanager

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"syscall"

	"github.com/cockroachdb/errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/coordkit/clientmanager/session"
)

// transportCreds returns the transport credentials of the default dialer:
// Config.TLS's client credentials when set, else WithTransportCredentials'.
func transportCreds(cfg Config, o options) credentials.TransportCredentials {
	if cfg.TLS != nil {
		return cfg.TLS.ClientCredentials()
	}
	return o.creds
}

// roleAuthority is the ability of transport credentials that check the
// node's role (security.ClientCredentials): the authority that names a
// role, which they verify the node's certificate against.
type roleAuthority interface {
	Authority(role string) string
}

// withRoleAuthority returns opts with, when creds check roles, the
// authority that names s's role: a node whose certificate names another
// role fails its handshake, so it is never READY, never online, never
// called. opts itself is not modified.
func withRoleAuthority(opts []grpc.DialOption, creds credentials.TransportCredentials, s session.Session) []grpc.DialOption {
	ra, ok := creds.(roleAuthority)
	if !ok {
		return opts
	}
	return append(slices.Clip(opts), grpc.WithAuthority(ra.Authority(s.ServerName)))
}

// validateSecurity checks AllowedNetworks.
func (c Config) validateSecurity() []error {
	var errs []error
	for i, p := range c.AllowedNetworks {
		if !p.IsValid() {
			errs = append(errs, errors.Newf("AllowedNetworks[%d] (%s) is not a valid prefix", i, p))
		}
	}
	return errs
}

// ErrAddressNotAllowed is returned (wrapped, naming the address) by the
// default dialer for a session address outside Config.AllowedNetworks.
var ErrAddressNotAllowed = errors.New("address outside AllowedNetworks")

// networkDialOptions returns, when Config.AllowedNetworks is set, the
// option that makes the default dialer connect only to addresses in them:
// every address a host name resolves to is checked before it is
// connected to.
func networkDialOptions(cfg Config) []grpc.DialOption {
	if len(cfg.AllowedNetworks) == 0 {
		return nil
	}
	nets := slices.Clone(cfg.AllowedNetworks)
	d := &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		return checkAllowed(nets, address)
	}}
	return []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	})}
}

// checkAllowed returns nil when address (ip:port) is in one of nets.
func checkAllowed(nets []netip.Prefix, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return errors.Wrapf(ErrAddressNotAllowed, "clientmanager: %s", address)
	}
	ip := ap.Addr().Unmap()
	for _, p := range nets {
		if p.Contains(ip) {
			return nil
		}
	}
	return errors.Wrapf(ErrAddressNotAllowed, "clientmanager: %s is outside %v", address, nets)
}
