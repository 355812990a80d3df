package startup

import (
	"strings"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc"
)

// validateSecurity checks TLS and AllowedCallerRoles.
func (c Config) validateSecurity() error {
	if len(c.AllowedCallerRoles) > 0 && c.TLS == nil {
		return errors.Newf("startup: AllowedCallerRoles (%v) need TLS", c.AllowedCallerRoles)
	}
	for i, r := range c.AllowedCallerRoles {
		if r == "" || strings.ContainsAny(r, "/ .") {
			return errors.Newf("startup: AllowedCallerRoles[%d] (%q) must be non-empty, without '/', '.' or spaces", i, r)
		}
	}
	return nil
}

// securityServerOptions returns the server credentials and caller-role
// check of cfg.TLS and cfg.AllowedCallerRoles; none without TLS. They
// come first, so a caller of another role reaches neither the state gate
// nor the identity check.
func securityServerOptions(cfg Config) []grpc.ServerOption {
	if cfg.TLS == nil {
		return nil
	}
	return cfg.TLS.ServerOptions(cfg.AllowedCallerRoles...)
}
