package balancer

import (
	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
)

// ErrInvalidConfig is returned by Validate and the constructors when a
// Config field is out of range; the message names the field and its value.
var ErrInvalidConfig = errors.New("invalid balancer config")

// Policy names a balancing algorithm.
type Policy string

// The policies New accepts.
const (
	PolicyRoundRobin Policy = "round_robin"
	PolicyPowerOfTwo Policy = "power_of_two"
	PolicyLookAside  Policy = "look_aside"
)

// Config selects and configures the balancer of a role.
type Config struct {
	// Policy is the algorithm. Default PolicyPowerOfTwo; the empty string
	// selects the default.
	Policy Policy
	// LookAside configures PolicyLookAside and is ignored otherwise.
	// Default DefaultLookAsideConfig().
	LookAside LookAsideConfig
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Policy:    PolicyPowerOfTwo,
		LookAside: DefaultLookAsideConfig(),
	}
}

// Validate reports the first out-of-range field, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	switch c.Policy {
	case "", PolicyRoundRobin, PolicyPowerOfTwo:
		return nil
	case PolicyLookAside:
		return c.LookAside.Validate()
	default:
		return errors.Wrapf(ErrInvalidConfig, "Policy (%q) must be one of %q, %q, %q",
			c.Policy, PolicyRoundRobin, PolicyPowerOfTwo, PolicyLookAside)
	}
}

// New returns the balancer cfg selects.
func New(cfg Config, opts ...Option) (Balancer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Policy {
	case PolicyRoundRobin:
		return NewRoundRobin(), nil
	case PolicyLookAside:
		return NewLookAside(cfg.LookAside, opts...)
	default:
		return NewPowerOfTwo(opts...), nil
	}
}

// Option sets a hook of a balancer. Options a policy has no use for are
// ignored.
type Option func(*options)

type options struct {
	clock  clockwork.Clock
	seed   uint64
	seeded bool
}

func buildOptions(opts []Option) options {
	o := options{clock: clockwork.NewRealClock()}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock sets the clock LookAside uses for blackout and expiry. Default:
// the real clock. Tests pass a clockwork.FakeClock.
func WithClock(c clockwork.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithSeed seeds the random choices of PowerOfTwo and LookAside, making a
// serial sequence of picks reproducible. Default: a random seed.
func WithSeed(seed uint64) Option {
	return func(o *options) {
		o.seed, o.seeded = seed, true
	}
}
