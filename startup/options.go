package startup

import (
	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/session"
)

// Option sets a hook of New.
type Option func(*options)

type options struct {
	logger      *zap.Logger
	clock       clockwork.Clock
	sessionOpts []session.Option
	metrics     *Metrics // nil: none
}

func buildOptions(opts []Option) options {
	o := options{logger: zap.NewNop(), clock: clockwork.NewRealClock()}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithLogger sets the logger; it is also given to the session's
// registration. Default: no logs.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithClock sets the clock of the Runner's own timers (DependencyTimeout,
// the dependency-wait report, AbnormalAfter, LameDuck, StopTimeout) and of
// transition times. Default: the real clock.
func WithClock(c clockwork.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithSessionOptions adds options (metrics, clock) to the registration of
// the session. The Runner's logger is given to it before these.
func WithSessionOptions(opts ...session.Option) Option {
	return func(o *options) { o.sessionOpts = append(o.sessionOpts, opts...) }
}
