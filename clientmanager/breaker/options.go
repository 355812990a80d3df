package breaker

import (
	"math/rand/v2"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// Option sets a hook of a Breaker.
type Option func(*options)

type options struct {
	clock     clockwork.Clock
	rand      func() float64
	logger    *zap.Logger
	listeners []func(from, to State)
}

func defaultOptions() options {
	return options{
		clock:  clockwork.NewRealClock(),
		rand:   rand.Float64,
		logger: zap.NewNop(),
	}
}

// WithClock sets the clock. Default: the real clock. Tests pass a
// clockwork.FakeClock.
func WithClock(c clockwork.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithRand sets the source of the break-duration jitter: a function
// returning a value in [0, 1). It is called outside the breaker's lock, at
// most once per opening; if it is shared between breakers it must be safe
// for concurrent use (guard a *rand.Rand with a mutex). Default: the
// goroutine-safe generator of math/rand/v2.
func WithRand(f func() float64) Option {
	return func(o *options) {
		if f != nil {
			o.rand = f
		}
	}
}

// WithLogger sets the logger; the breaker logs each state change once, at
// info level. Give it the node's fields (role, node_id) with zap's With.
// Default: no logging.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithOnStateChange adds a listener called after every state change,
// outside the breaker's lock, once per transition and in transition order.
// It may call any method of the breaker. Listeners added by several options
// are called in the order the options were given.
func WithOnStateChange(f func(from, to State)) Option {
	return func(o *options) {
		if f != nil {
			o.listeners = append(o.listeners, f)
		}
	}
}
