package session

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// WithLeaseIDs sets how a new registration chooses its lease's ID.
func WithLeaseIDs(f func() int64) Option { return func(o *options) { o.leaseIDs = f } }

// WithGrant sets how a new registration grants its lease: f is given the
// grant it would make, to call.
func WithGrant(f func(ctx context.Context, req *pb.LeaseGrantRequest, grant func(context.Context, *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)) (*pb.LeaseGrantResponse, error)) Option {
	return func(o *options) {
		o.grant = func(ctx context.Context, cli *clientv3.Client, req *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
			return f(ctx, req, func(ctx context.Context, req *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
				recv, err := options{}.sendGrant(ctx, cli, req)
				if err != nil {
					return nil, err
				}
				return recv()
			})
		}
	}
}
