package clientmanager

import (
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Option sets a hook of New.
type Option func(*options)

type options struct {
	logger      *zap.Logger
	clock       clockwork.Clock
	registerer  prometheus.Registerer
	dialer      Dialer
	creds       credentials.TransportCredentials
	dialOptions []grpc.DialOption
}

func buildOptions(opts []Option) options {
	o := options{
		logger: zap.NewNop(),
		clock:  clockwork.NewRealClock(),
		creds:  insecure.NewCredentials(),
	}
	for _, opt := range opts {
		opt(&o)
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

// WithClock sets the clock of dial backoff, re-probes, call timeouts and
// call backoff (a fake one in tests). Default: the real clock.
func WithClock(c clockwork.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithRegisterer sets where the manager's Prometheus collectors are
// registered (see metrics.go). Default: nowhere.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) { o.registerer = r }
}

// WithDialer replaces the gRPC dialer, for instance with a Standalone one
// or a test double. The options of WithTransportCredentials and
// WithDialOptions, and the connection settings of Config, apply only to
// the default dialer.
func WithDialer(d Dialer) Option {
	return func(o *options) {
		if d != nil {
			o.dialer = d
		}
	}
}

// WithTransportCredentials sets the credentials of the default dialer.
// Default: insecure (plaintext), for loopback and tests.
func WithTransportCredentials(c credentials.TransportCredentials) Option {
	return func(o *options) {
		if c != nil {
			o.creds = c
		}
	}
}

// WithDialOptions adds grpc options to the default dialer, after the ones
// built from Config (so they win where they overlap).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, opts...) }
}
