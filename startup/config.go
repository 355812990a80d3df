package startup

import (
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/session"
)

// DependencyPolicy says what Run does when a required dependency is not
// online within DependencyTimeout.
type DependencyPolicy int

const (
	// Continue logs the dependency as offline and goes on; the client
	// manager connects to it when its session appears in etcd.
	Continue DependencyPolicy = iota
	// Strict stops and makes Run return a *DependencyTimeoutError.
	Strict
)

// String returns "continue" or "strict".
func (p DependencyPolicy) String() string {
	switch p {
	case Continue:
		return "continue"
	case Strict:
		return "strict"
	}
	return "DependencyPolicy(" + strconv.Itoa(int(p)) + ")"
}

// Dependency is a role the component calls.
type Dependency struct {
	// Role is the dependency's ServerName, such as "rootcoord".
	Role string
	// Optional dependencies are watched but never waited for.
	Optional bool
}

// Config describes one component's lifecycle.
type Config struct {
	// Session is the record registered once the component serves.
	// ServerName (the role) is required. An empty Address is filled with
	// the listener's address; set it when listening on a wildcard address
	// (":19530"), which others cannot dial. Exclusive makes the role one-active: a second
	// process waits in StateStandBy. ServerID 0 (the default) allocates
	// one; LeaseID and Stopping are set by the registration.
	Session session.Session
	// SessionConfig says where sessions live and how they are kept.
	// Default session.DefaultConfig().
	SessionConfig session.Config
	// Dependencies are the roles the component calls; each is added to the
	// client manager. Default none. A non-empty list needs a manager.
	Dependencies []Dependency
	// DependencyTimeout bounds the wait for every required dependency to
	// be online, all together. Default 90 s (three dial attempts of 30 s).
	// Zero does not wait: dependencies offline at once are handled by
	// DependencyPolicy. Must be ≥ 0.
	DependencyTimeout time.Duration
	// DependencyPolicy is what happens when the wait times out.
	// Default Continue.
	DependencyPolicy DependencyPolicy
	// LameDuck is how long a stopping process keeps serving after it wrote
	// Stopping=true to its session, so callers learn of the stop and stop
	// picking it before its calls are refused. The wait is skipped when no
	// one is calling: the Runner is not Healthy, or no gated call was in
	// flight at any moment of the LameDuck before the wait would begin
	// (the health service and GateAllowlist methods are not gated, so they
	// do not count). ForceStop cuts it short. Default 1 s. Zero does not
	// wait. Must be ≥ 0.
	LameDuck time.Duration
	// StopTimeout bounds a graceful stop from the moment calls are refused
	// (after the lame-duck wait) to the gRPC server's stop: the component's
	// Stop run concurrently with the drain of calls in flight, then the
	// server's graceful stop. When it elapses the stop is forced.
	// Default 30 s. Must be > 0.
	StopTimeout time.Duration
	// AbnormalAfter is how long the session may stay unregistered —
	// Disconnected from etcd, or re-registering after a lost lease — before
	// the component goes Abnormal (health NOT_SERVING, calls rejected).
	// Until then a non-exclusive component keeps serving: an etcd outage is
	// not a data-plane outage. Default 60 s. Must be > 0. Under
	// session.Exit the component stops as soon as the lease is lost.
	AbnormalAfter time.Duration
	// GateAllowlist lists full method names ("/pkg.Service/Method") served
	// in every state, in addition to the health service; an entry ending in
	// "/" ("/pkg.Service/") allows every method of that service. Default
	// none.
	GateAllowlist []string
	// TLS, when set, makes ServerOptions serve with mutual TLS: the server
	// presents TLS's certificate and refuses callers without a certificate
	// of the cluster's CA. Default nil: plaintext. See package security.
	TLS *security.TLS
	// AllowedCallerRoles, when not empty, rejects every call (the health
	// service included) whose caller's certificate names none of these
	// roles: codes.PermissionDenied (another role) or
	// codes.Unauthenticated (no role), with the expected and presented
	// names. Default none: any certificate of the CA. Needs TLS.
	AllowedCallerRoles []string
}

// DefaultConfig returns the defaults documented on each field. Session's
// ServerName must still be set.
func DefaultConfig() Config {
	return Config{
		SessionConfig:     session.DefaultConfig(),
		DependencyTimeout: 90 * time.Second,
		DependencyPolicy:  Continue,
		LameDuck:          time.Second,
		StopTimeout:       30 * time.Second,
		AbnormalAfter:     60 * time.Second,
	}
}

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	if err := session.ValidateRole(c.Session.ServerName); err != nil {
		return errors.Wrap(err, "startup: Session.ServerName")
	}
	switch {
	case c.DependencyTimeout < 0:
		return errors.Newf("startup: DependencyTimeout (%s) must be ≥ 0", c.DependencyTimeout)
	case c.DependencyPolicy != Continue && c.DependencyPolicy != Strict:
		return errors.Newf("startup: DependencyPolicy (%d) is unknown", int(c.DependencyPolicy))
	case c.LameDuck < 0:
		return errors.Newf("startup: LameDuck (%s) must be ≥ 0", c.LameDuck)
	case c.StopTimeout <= 0:
		return errors.Newf("startup: StopTimeout (%s) must be > 0", c.StopTimeout)
	case c.AbnormalAfter <= 0:
		return errors.Newf("startup: AbnormalAfter (%s) must be > 0", c.AbnormalAfter)
	}
	if err := c.SessionConfig.Validate(); err != nil {
		return errors.Wrap(err, "startup: SessionConfig")
	}
	seen := make(map[string]bool, len(c.Dependencies))
	for i, d := range c.Dependencies {
		if err := session.ValidateRole(d.Role); err != nil {
			return errors.Wrapf(err, "startup: Dependencies[%d].Role", i)
		}
		if seen[d.Role] {
			return errors.Newf("startup: Dependencies[%d].Role (%q) is listed twice", i, d.Role)
		}
		seen[d.Role] = true
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	for i, m := range c.GateAllowlist {
		if !strings.HasPrefix(m, "/") || strings.Count(m, "/") != 2 || len(m) < 3 || m[1] == '/' {
			return errors.Newf("startup: GateAllowlist[%d] (%q) must be a full method name \"/pkg.Service/Method\" or a service \"/pkg.Service/\"", i, m)
		}
	}
	return nil
}
