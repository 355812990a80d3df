package session

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// EtcdDialOptions returns the grpc dial options to give the etcd client
// (clientv3.Config.DialOptions) of a process that registers or watches: a
// reconnect backoff from 100 ms up to 1 s, so that a registration is
// Connected again within about a second of etcd's return rather than after
// grpc's default backoff of up to two minutes.
func EtcdDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: time.Second,
	})}
}

// IsEtcdAuthError reports whether err is etcd refusing the client's
// credentials or permissions (a wrong user or password, a user without
// permission on a key, an unknown user of a client certificate): trying
// again cannot help, so registration does not retry it. An expired auth
// token is not one of these (the client fetches a new one).
func IsEtcdAuthError(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range []error{rpctypes.ErrGRPCAuthFailed, rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCUserNotFound,
		rpctypes.ErrGRPCUserEmpty, rpctypes.ErrGRPCRoleNotGranted, rpctypes.ErrGRPCPermissionNotGranted} {
		if errors.Is(err, e) || errors.Is(err, rpctypes.Error(e)) {
			return true
		}
	}
	switch status.Code(errors.UnwrapAll(err)) {
	case codes.PermissionDenied, codes.Unauthenticated:
		return !errors.Is(err, rpctypes.ErrGRPCInvalidAuthToken) && !errors.Is(err, rpctypes.ErrInvalidAuthToken)
	}
	return false
}

// retryableEtcd is the retry condition of registration's etcd requests:
// everything but IsEtcdAuthError.
func retryableEtcd(err error) bool { return !IsEtcdAuthError(err) }

// CheckEtcdAccess reads the session prefix of cfg once, bounded by
// cfg.RequestTimeout, and returns an error naming etcd's endpoints and the
// cause when it cannot: a process started with credentials etcd rejects
// fails at once, with the reason, rather than retrying in the background.
func CheckEtcdAccess(ctx context.Context, cli *clientv3.Client, cfg Config) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	_, err := cli.Get(ctx, cfg.Prefix()+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err == nil {
		return nil
	}
	if IsEtcdAuthError(err) {
		return errors.Wrapf(err, "session: etcd %v rejected the credentials reading %s/", cli.Endpoints(), cfg.Prefix())
	}
	return errors.Wrapf(err, "session: etcd %v: read %s/", cli.Endpoints(), cfg.Prefix())
}
