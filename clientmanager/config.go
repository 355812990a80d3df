package clientmanager

import (
	"net/netip"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/cockroachdb/errors"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/clientmanager/bulkhead"
	"github.com/coordkit/clientmanager/retry"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/session"
)

// Config says where sessions live, how nodes are dialed and how calls are
// retried. Start from DefaultConfig; New calls Validate.
type Config struct {
	// SessionConfig says where sessions live in etcd. Default
	// session.DefaultConfig().
	SessionConfig session.Config
	// DialAttempts is how many times a node is dialed before it is marked
	// unreachable. Default 3. Must be ≥ 1.
	DialAttempts int
	// DialTimeout bounds each dial attempt, from the moment it holds a
	// dial slot until the connection is READY, whether or not it still
	// holds the slot (see DialSlotTimeout). Default 30 s. Must be > 0.
	DialTimeout time.Duration
	// DialBackoff paces the dial attempts of a node (DialAttempts of them,
	// each bounded by DialTimeout). Default 100 ms × 1.6 up to 3 s, full
	// jitter.
	DialBackoff retry.Backoff
	// MaxParallelDials bounds the connections being opened at once, over
	// every role: a dial attempt starts once it holds one of these slots,
	// and holds it until its connection is open — with the default
	// dialer, until its TCP connection is established; with another
	// Dialer, until Dial returns — or for DialSlotTimeout at most. So a
	// listener that accepts connections and never answers (a black hole)
	// gives its slot back at once and never delays the other nodes.
	// Default 64. Must be ≥ 1.
	MaxParallelDials int
	// DialSlotTimeout is the longest a dial attempt holds its
	// MaxParallelDials slot: an attempt whose connection is not open by
	// then (an address that does not answer at all, a Dialer that
	// returns only once READY) goes on without it, until READY or
	// DialTimeout. Default 1 s. Must be > 0.
	DialSlotTimeout time.Duration
	// ReprobeInterval is how often an unreachable node is dialed again (one
	// attempt) while its session exists. Default 30 s. Must be > 0.
	ReprobeInterval time.Duration
	// CallAttempts is how many attempts Invoke makes. Default 3. Must be
	// ≥ 1; 1 means no retry.
	CallAttempts int
	// CallTimeout bounds each attempt of Invoke; the caller's deadline
	// bounds it too. An Idempotent call's attempt gets at most its share of
	// the caller's remaining time (remaining / attempts left, at least
	// 100 ms), so a retry still fits; see Invoke. Default 10 s. Must be > 0.
	CallTimeout time.Duration
	// CallBackoff paces the attempts of Invoke on the same node; failing
	// over to another node is immediate. Default 100 ms × 1.6 up to 3 s,
	// full jitter.
	CallBackoff retry.Backoff
	// ConnectBackoffMax caps the reconnect backoff of a connection (base
	// 100 ms, multiplier 1.6, jitter 0.2). Default 3 s. Must be ≥ 100 ms.
	ConnectBackoffMax time.Duration
	// KeepaliveTime is the interval of keepalive pings on an idle
	// connection. Default 10 s. Must be ≥ 10 s (grpc's minimum).
	KeepaliveTime time.Duration
	// KeepaliveTimeout is how long a ping may go unanswered before the
	// connection is closed. Default 20 s. Must be > 0.
	KeepaliveTimeout time.Duration
	// SuspectOnHealth enables grpc client-side health checking against the
	// server's health service (service name ""), so a node whose server
	// says NOT_SERVING is suspect. Default true.
	SuspectOnHealth bool
	// DrainTimeout is ignored: the connection of a removed node is closed
	// at once, which is what ends the calls in flight on it (they fail
	// with ErrNodeGone). Default 10 s. Must be ≥ 0.
	//
	// Deprecated: nothing waits for a removed node's calls any more.
	DrainTimeout time.Duration
	// Balancer selects the balancing policy of each role. Default
	// balancer.DefaultConfig() (power of two choices).
	Balancer balancer.Config
	// VersionRange maps a role to a semantic version constraint (see
	// session.WatchConfig.VersionRange); nodes outside it are not seen.
	// Default nil: every version of every role.
	VersionRange map[string]string
	// TLS, when set, makes the default dialer use mutual TLS: it presents
	// TLS's certificate and dials a node of role R with the authority
	// security.Authority(cluster, R), accepting it only if its
	// certificate names R (see config_security.go). It replaces the
	// credentials of WithTransportCredentials. Default nil: those
	// credentials (plaintext unless set).
	TLS *security.TLS
	// AllowedNetworks, when not empty, are the networks session addresses
	// may be in, so a record written by whoever can write to etcd cannot
	// send the manager's connections elsewhere: a record whose address is
	// an IP outside them (or not host:port) is skipped before dialing —
	// never listed, never online — logged and counted
	// (clientmanager_sessions_rejected_total); a host name is resolved by
	// the default dialer, which refuses to connect to any resolved
	// address outside them (the node is then never online; its Status
	// says why). Default none: any address.
	AllowedNetworks []netip.Prefix

	// The per-node resilience of Invoke: see the steps on Invoke.

	// Breaker configures the circuit breaker of every node. Default
	// breaker.DefaultConfig(): open on 5 failures in a row or 50 % of at
	// least 20 calls in 10 s, 5 s break doubling up to 60 s, 3 probes.
	// Its ProbeLease should not be shorter than CallTimeout, or a slow
	// probe counts as failed.
	Breaker breaker.Config
	// Bulkhead bounds the concurrent attempts to every node. Default
	// bulkhead.DefaultConfig(): 64 at once, 128 queued, 1 s queue wait.
	Bulkhead bulkhead.Config
	// MaxEjectionPercent caps the share of a role's available nodes that
	// circuit breakers take out of routing while at least one node of the
	// role has a closed breaker: at most ⌊n × MaxEjectionPercent / 100⌋
	// of n nodes, and never all n. The nodes past the cap (those whose
	// breakers opened earliest) get traffic anyway. Default 50. In
	// [0, 100]; zero means breakers eject nothing while a node is healthy.
	MaxEjectionPercent int
	// PanicMode decides what Invoke does when no node of the role has a
	// closed breaker and none admits a half-open probe: true routes to
	// every available node regardless of its breaker, false (the default)
	// fails at once with ErrAllNodesUnhealthy.
	PanicMode bool
	// RetryBudget bounds the retries of each role. Default Ratio 0.2,
	// MinPerSecond 10, Window 10 s.
	RetryBudget RetryBudget
	// PoolSize is the number of connections to each node; calls go round
	// robin over them. The first is the one the connector dials; the
	// others are dialed in the background on first use, and calls use the
	// first until they are READY. Default 1. In [1, 64].
	PoolSize int
	// IdleTimeout closes a pooled connection other than the first that
	// carried no call for this long (checked every IdleTimeout/2); it is
	// dialed again on its next use. Every connection of a node, the first
	// included, is closed when the node leaves. Default 10 min. Zero never closes them for idleness. Must be
	// ≥ 0. Only used when PoolSize > 1.
	IdleTimeout time.Duration
	// UnhealthyAfter is how long a node's breaker may stay out of the
	// closed state before RoleHealth calls its role Unhealthy. Default
	// 30 s. Must be > 0.
	UnhealthyAfter time.Duration
	// BreakerRefreshInterval is how often the manager moves every breaker
	// along in time (open → half-open when its break is over, hung probes
	// reclaimed, windows expired), so that Status and RoleHealth stay
	// current for nodes that get no call. Picks do so on their own for the
	// nodes they consider. Default 250 ms. Must be > 0.
	BreakerRefreshInterval time.Duration
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config {
	return Config{
		SessionConfig:     session.DefaultConfig(),
		DialAttempts:      3,
		DialTimeout:       30 * time.Second,
		DialBackoff:       retry.DefaultBackoff(),
		MaxParallelDials:  64,
		DialSlotTimeout:   time.Second,
		ReprobeInterval:   30 * time.Second,
		CallAttempts:      3,
		CallTimeout:       10 * time.Second,
		CallBackoff:       retry.DefaultBackoff(),
		ConnectBackoffMax: 3 * time.Second,
		KeepaliveTime:     10 * time.Second,
		KeepaliveTimeout:  20 * time.Second,
		SuspectOnHealth:   true,
		DrainTimeout:      10 * time.Second,
		Balancer:          balancer.DefaultConfig(),

		Breaker:                breaker.DefaultConfig(),
		Bulkhead:               bulkhead.DefaultConfig(),
		MaxEjectionPercent:     50,
		RetryBudget:            DefaultRetryBudget(),
		PoolSize:               1,
		IdleTimeout:            10 * time.Minute,
		UnhealthyAfter:         30 * time.Second,
		BreakerRefreshInterval: 250 * time.Millisecond,
	}
}

// connectBackoffBase is the first reconnect delay of a connection.
const connectBackoffBase = 100 * time.Millisecond

// minKeepaliveTime is the smallest keepalive interval grpc accepts.
const minKeepaliveTime = 10 * time.Second

// Validate reports every field that is out of range, each by name and value.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, errors.Newf(format, args...)) }
	if err := c.SessionConfig.Validate(); err != nil {
		errs = append(errs, errors.Wrap(err, "Session"))
	}
	if c.DialAttempts < 1 {
		bad("DialAttempts (%d) must be ≥ 1", c.DialAttempts)
	}
	if c.DialTimeout <= 0 {
		bad("DialTimeout (%s) must be > 0", c.DialTimeout)
	}
	if err := c.DialBackoff.Validate(); err != nil {
		errs = append(errs, errors.Wrap(err, "DialBackoff"))
	}
	if c.MaxParallelDials < 1 {
		bad("MaxParallelDials (%d) must be ≥ 1", c.MaxParallelDials)
	}
	if c.DialSlotTimeout <= 0 {
		bad("DialSlotTimeout (%s) must be > 0", c.DialSlotTimeout)
	}
	if c.ReprobeInterval <= 0 {
		bad("ReprobeInterval (%s) must be > 0", c.ReprobeInterval)
	}
	if c.CallAttempts < 1 {
		bad("CallAttempts (%d) must be ≥ 1", c.CallAttempts)
	}
	if c.CallTimeout <= 0 {
		bad("CallTimeout (%s) must be > 0", c.CallTimeout)
	}
	if err := c.CallBackoff.Validate(); err != nil {
		errs = append(errs, errors.Wrap(err, "CallBackoff"))
	}
	if c.ConnectBackoffMax < connectBackoffBase {
		bad("ConnectBackoffMax (%s) must be ≥ %s", c.ConnectBackoffMax, connectBackoffBase)
	}
	if c.KeepaliveTime < minKeepaliveTime {
		bad("KeepaliveTime (%s) must be ≥ %s", c.KeepaliveTime, minKeepaliveTime)
	}
	if c.KeepaliveTimeout <= 0 {
		bad("KeepaliveTimeout (%s) must be > 0", c.KeepaliveTimeout)
	}
	if c.DrainTimeout < 0 {
		bad("DrainTimeout (%s) must be ≥ 0", c.DrainTimeout)
	}
	if err := c.Balancer.Validate(); err != nil {
		errs = append(errs, errors.Wrap(err, "Balancer"))
	}
	for role, r := range c.VersionRange {
		if _, err := semver.NewConstraint(r); err != nil {
			bad("VersionRange[%q] (%q) is not a version constraint: %v", role, r, err)
		}
	}
	errs = append(errs, c.validateResilience()...)
	errs = append(errs, c.validateSecurity()...)
	return joinConfigErrors(errs)
}

// joinConfigErrors returns nil, the only error, or all of them joined.
func joinConfigErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errors.Wrap(errs[0], "clientmanager: invalid config")
	}
	return errors.Wrap(errors.Join(errs...), "clientmanager: invalid config")
}
