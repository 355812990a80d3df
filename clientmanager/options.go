package clientmanager

import (
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/coordkit/clientmanager/session"
)

// Option sets a hook of New.
type Option func(*options)

type options struct {
	logger     *zap.Logger
	clock      clockwork.Clock
	registerer prometheus.Registerer
	// sessionMetrics, when set, replaces the manager's own.
	sessionMetrics *session.Metrics
	dialer         Dialer
	creds          credentials.TransportCredentials
	dialOptions    []grpc.DialOption
}

func buildOptions(opts []Option) options {
	o := options{
		logger: zap.NewNop(),
		clock:  monoClock{clockwork.NewRealClock()},
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

// WithClock sets the clock of dial backoff, re-probes, call timeouts, call
// backoff and the session watchers of the dependencies (a fake one in
// tests). Default: the real clock.
func WithClock(c clockwork.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithRegisterer sets where the manager's Prometheus collectors are
// registered (see metrics.go), and with them the session metrics of its
// watchers (session.NewMetrics: clientmanager_session_known_sessions,
// clientmanager_session_last_sync_timestamp_seconds, …), unless
// WithSessionMetrics gives those. Default: nowhere.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) { o.registerer = r }
}

// WithSessionMetrics sets the session metrics of the manager's watchers,
// for a process that registers its own session with the same registerer:
// session.NewMetrics may be called once per registerer, and its result
// shared by every Register and NewWatcher (and Manager) of the process.
// Default: session.NewMetrics with WithRegisterer's registerer.
func WithSessionMetrics(m *session.Metrics) Option {
	return func(o *options) {
		if m != nil {
			o.sessionMetrics = m
		}
	}
}

// WithDialer replaces the gRPC dialer, for instance with a
// standalone.Server (in-process services) or a test double. The options of WithTransportCredentials and
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
