package clientmanager

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	_ "google.golang.org/grpc/health" // registers the client-side health checker
	"google.golang.org/grpc/keepalive"

	"github.com/coordkit/clientmanager/session"
)

// Dialer makes a connection to one node. The manager calls it in the node's
// own goroutine, once per attempt, with ctx bounded by DialTimeout; it must
// return once the connection is READY, or close what it made and return an
// error when ctx ends.
type Dialer interface {
	Dial(ctx context.Context, s session.Session) (Conn, error)
}

// Conn is what the manager needs from a connection; *grpc.ClientConn
// satisfies it.
type Conn interface {
	grpc.ClientConnInterface
	// GetState returns the connection's state.
	GetState() connectivity.State
	// WaitForStateChange waits until the state differs from source or ctx
	// ends, and reports whether it changed.
	WaitForStateChange(ctx context.Context, source connectivity.State) bool
	// Connect makes an IDLE connection reconnect.
	Connect()
	// Close closes the connection; calls in flight fail.
	Close() error
}

var _ Conn = (*grpc.ClientConn)(nil)

// grpcDialer is the default Dialer.
type grpcDialer struct {
	opts []grpc.DialOption
}

// NewGRPCDialer returns a Dialer that makes a grpc.ClientConn to the
// session's Address with opts (grpc.NewClient with the passthrough
// resolver), starts connecting and waits until it is READY. opts must
// include transport credentials.
func NewGRPCDialer(opts ...grpc.DialOption) Dialer {
	return &grpcDialer{opts: append([]grpc.DialOption(nil), opts...)}
}

// Dial implements Dialer.
func (d *grpcDialer) Dial(ctx context.Context, s session.Session) (Conn, error) {
	cc, err := grpc.NewClient("passthrough:///"+s.Address, d.opts...)
	if err != nil {
		return nil, errors.Wrapf(err, "clientmanager: dial %s", s.Address)
	}
	cc.Connect()
	for {
		st := cc.GetState()
		switch st {
		case connectivity.Ready:
			return cc, nil
		case connectivity.Idle:
			cc.Connect()
		case connectivity.Shutdown:
			return nil, errors.Newf("clientmanager: dial %s: connection shut down", s.Address)
		}
		if !cc.WaitForStateChange(ctx, st) {
			_ = cc.Close()
			return nil, errors.Wrapf(ctx.Err(), "clientmanager: dial %s: still %s", s.Address, st)
		}
	}
}

// dialOptions returns the grpc options the default dialer is made with:
// credentials, reconnect backoff, keepalive, no grpc retries, the health
// check when asked, then the caller's extra options.
func dialOptions(cfg Config, o options) []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(o.creds),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  connectBackoffBase,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   cfg.ConnectBackoffMax,
			},
			MinConnectTimeout: minConnectTimeout(cfg),
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                cfg.KeepaliveTime,
			Timeout:             cfg.KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithDisableRetry(),
		grpc.WithDefaultServiceConfig(serviceConfig(cfg.SuspectOnHealth)),
	}
	return append(opts, o.dialOptions...)
}

// minConnectTimeout bounds one TCP+HTTP/2 handshake of a reconnect: grpc's
// default 20 s, or DialTimeout when shorter.
func minConnectTimeout(cfg Config) time.Duration {
	return min(20*time.Second, cfg.DialTimeout)
}

// serviceConfig returns the default service config. Client-side health
// checking needs a balancer that honours it: round_robin over the single
// address does, pick_first does not.
func serviceConfig(health bool) string {
	if !health {
		return `{"loadBalancingConfig":[{"pick_first":{}}]}`
	}
	return `{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}`
}
