package clientmanager

import (
	"context"
	"slices"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/session"
)

// Dialer makes a connection to one node. The manager calls it in the node's
// own goroutine, once per attempt, with ctx bounded by DialTimeout; it must
// return once the connection is READY, or close what it made and return an
// error when ctx ends. READY means connected: whether the server serves is
// the health watch's business (Config.SuspectOnHealth), so a Dialer must
// not wait for it. The attempt holds a MaxParallelDials slot while Dial
// runs, for DialSlotTimeout at most.
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
	// Connect makes an IDLE connection reconnect. The default dialer's
	// connections never go IDLE for want of calls; another Dialer's may,
	// and the node stays available while it reconnects.
	Connect()
	// Close closes the connection; calls in flight must fail (with
	// codes.Canceled or Unavailable, as a grpc.ClientConn's do): closing
	// the connection of a node that left is how the manager ends the
	// calls in flight on it.
	Close() error
}

var _ Conn = (*grpc.ClientConn)(nil)

// grpcDialer is the default Dialer.
type grpcDialer struct {
	opts []grpc.DialOption
	// credsAt is the index in opts of the manager's transport credentials
	// (credsOption), which each attempt wraps in slotCreds; -1: none.
	credsAt int
	creds   credentials.TransportCredentials
}

// NewGRPCDialer returns a Dialer that makes a grpc.ClientConn to the
// session's Address with opts (grpc.NewClient with the passthrough
// resolver), starts connecting and waits until it is READY: connected,
// whatever the server's health says. opts must include transport
// credentials. The manager's own default dialer gives an attempt's dial
// slot back once its TCP connection is established; a dialer made here
// holds the slot until READY, DialSlotTimeout at most.
func NewGRPCDialer(opts ...grpc.DialOption) Dialer {
	d := &grpcDialer{opts: append([]grpc.DialOption(nil), opts...), credsAt: -1}
	for i, o := range d.opts {
		if co, ok := o.(credsOption); ok {
			d.credsAt, d.creds = i, co.creds
		}
	}
	return d
}

// Dial implements Dialer. An attempt that runs out names the last
// connection error grpc reported ("connection refused", a handshake
// failure), not only the state it was left in.
func (d *grpcDialer) Dial(ctx context.Context, s session.Session) (Conn, error) {
	return d.dialSlot(ctx, s, nil)
}

// dialSlot is Dial that gives slot back once the TCP connection is
// established, when the dialer knows the credentials to wrap.
func (d *grpcDialer) dialSlot(ctx context.Context, s session.Session, slot *dialSlot) (Conn, error) {
	opts := d.opts
	if slot != nil && d.credsAt >= 0 {
		opts = slices.Clone(d.opts)
		opts[d.credsAt] = grpc.WithTransportCredentials(slotCreds{TransportCredentials: d.creds, slot: slot})
	}
	opts = withRoleAuthority(opts, d.creds, s) // Config.TLS: the node must hold a certificate of its role
	cc, err := grpc.NewClient("passthrough:///"+s.Address, opts...)
	if err != nil {
		return nil, errors.Wrapf(err, "clientmanager: dial %s", s.Address)
	}
	connOpened(ctx, cc) // the connector's health watch waits for READY with the dial
	cc.Connect()
	var cause error // the last connection error seen
	for {
		st := cc.GetState()
		switch st {
		case connectivity.Ready:
			return cc, nil
		case connectivity.Idle:
			cc.Connect()
		case connectivity.TransientFailure:
			if err := connectError(ctx, cc); err != nil {
				cause = err
			}
		case connectivity.Shutdown:
			return nil, errors.Newf("clientmanager: dial %s: connection shut down", s.Address)
		}
		if !cc.WaitForStateChange(ctx, st) {
			_ = cc.Close()
			if cause != nil {
				return nil, errors.Wrapf(cause, "clientmanager: dial %s: %v, still %s", s.Address, context.Cause(ctx), st)
			}
			return nil, errors.Wrapf(context.Cause(ctx), "clientmanager: dial %s: still %s", s.Address, st)
		}
	}
}

// connectError returns why conn, which is not READY, cannot carry a call,
// as grpc tells a call that fails for that reason: the last connection
// error (codes.Unavailable, such as "dial tcp …: connect: connection
// refused"). It makes one health Check, which in TRANSIENT_FAILURE fails
// at once without reaching a server. It returns nil when the call got
// through or failed otherwise.
func connectError(ctx context.Context, conn grpc.ClientConnInterface) error {
	err := conn.Invoke(ctx, healthpb.Health_Check_FullMethodName,
		new(healthpb.HealthCheckRequest), new(healthpb.HealthCheckResponse))
	// A handshake refused for the peer's certificate (security.RoleError)
	// fails with its own code, PermissionDenied or Unauthenticated.
	if c := status.Code(err); (c != codes.Unavailable && c != codes.PermissionDenied && c != codes.Unauthenticated) || ctx.Err() != nil {
		return nil
	}
	return errors.New(status.Convert(err).Message())
}

// dialOptions returns the grpc options the default dialer is made with:
// credentials, reconnect backoff, keepalive, no grpc retries, no channel
// idleness, the round_robin policy, then the caller's extra options.
func dialOptions(cfg Config, o options) []grpc.DialOption {
	opts := []grpc.DialOption{
		withSlotCreds(transportCreds(cfg, o)),
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
		// A channel without calls would go IDLE after grpc's 30 min, and
		// its node would look lost; keepalive already watches it.
		grpc.WithIdleTimeout(0),
		grpc.WithDefaultServiceConfig(serviceConfig),
	}
	opts = append(opts, networkDialOptions(cfg)...) // Config.AllowedNetworks
	return append(opts, o.dialOptions...)
}

// minConnectTimeout bounds one TCP+HTTP/2 handshake of a reconnect: grpc's
// default 20 s, or DialTimeout when shorter.
func minConnectTimeout(cfg Config) time.Duration {
	return min(20*time.Second, cfg.DialTimeout)
}

// serviceConfig is the default service config. round_robin over the
// single address reconnects a lost connection on its own (CONNECTING,
// never IDLE), where pick_first would wait in IDLE for a call. Health is
// not checked by grpc: the connector watches it (see watchHealth), so a
// connection to a server that is not serving yet still counts as
// connected.
const serviceConfig = `{"loadBalancingConfig":[{"round_robin":{}}]}`
