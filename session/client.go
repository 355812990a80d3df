package session

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
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
