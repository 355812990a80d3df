package session

import (
	"context"
	"io"
	"math"
	"math/rand/v2"

	"github.com/jonboulle/clockwork"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Option sets a hook of Register or NewWatcher.
type Option func(*options)

type options struct {
	logger  *zap.Logger
	clock   clockwork.Clock
	metrics *Metrics
	rand    func() float64
	// leaseIDs chooses the ID of a new registration's lease, and grant
	// grants it (tests set them); nil: at random, and a grant sent on
	// the client's connection (see sendGrant).
	leaseIDs func() int64
	grant    func(context.Context, *clientv3.Client, *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
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

// newLeaseID returns the ID of a new lease: a random positive int64, as
// etcd's own are; two processes choosing the same one is a chance of one
// in about 10^18 per lease alive, and a choice that is taken fails the
// grant, which the registration then makes again.
func (o options) newLeaseID() clientv3.LeaseID {
	if o.leaseIDs != nil {
		return clientv3.LeaseID(o.leaseIDs())
	}
	return clientv3.LeaseID(rand.Int64N(math.MaxInt64) + 1)
}

// leaseGrantMethod is the gRPC method of etcd's lease grant.
const leaseGrantMethod = "/etcdserverpb.Lease/LeaseGrant"

// sendGrant sends the grant req asks for before it returns, and returns
// the function that waits for its answer, or why it could not be sent.
// The grant is a stream of cli's connection, which clientv3's
// interceptors never retry: a grant etcd applied but whose answer was
// lost would be retried into "lease already exists", as a grant of
// another process's ID is; only the latter may fail that way here. It is
// a unary call made in two steps, so that the caller goes on while the
// grant is in flight.
func (o options) sendGrant(ctx context.Context, cli *clientv3.Client, req *pb.LeaseGrantRequest) (recv func() (*pb.LeaseGrantResponse, error), err error) {
	if o.grant != nil {
		return func() (*pb.LeaseGrantResponse, error) { return o.grant(ctx, cli, req) }, nil
	}
	cs, err := cli.ActiveConnection().NewStream(ctx, &grpc.StreamDesc{}, leaseGrantMethod)
	if err != nil {
		return nil, err
	}
	if err := cs.SendMsg(req); err != nil && err != io.EOF { // io.EOF: RecvMsg has the status
		return nil, err
	}
	return func() (*pb.LeaseGrantResponse, error) {
		resp := new(pb.LeaseGrantResponse)
		if err := cs.RecvMsg(resp); err != nil {
			return nil, err
		}
		return resp, nil
	}, nil
}
