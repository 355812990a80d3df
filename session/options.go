package session

import (
	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// Option sets a hook of Register or NewWatcher.
type Option func(*options)

type options struct {
	logger  *zap.Logger
	clock   clockwork.Clock
	metrics *Metrics
	rand    func() float64
}

func buildOptions(opts []Option) options {
	o := options{logger: zap.NewNop(), clock: clockwork.NewRealClock()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.metrics == nil {
		o.metrics = nopMetrics()
	}
	return o
}

// WithLogger sets the logger. Default: no logs.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithClock sets the clock (a fake one in tests). Default: the real clock.
func WithClock(c clockwork.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithMetrics sets where counters and gauges go; see NewMetrics. Default:
// nowhere.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// WithRand sets the source of uniform values in [0, 1) used for jitter.
func WithRand(f func() float64) Option { return func(o *options) { o.rand = f } }
