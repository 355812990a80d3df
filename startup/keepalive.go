package startup

import (
	"time"

	"google.golang.org/grpc/keepalive"
)

// KeepalivePolicy returns the keepalive enforcement every server called
// by a clientmanager.Manager needs: pings as often as every 5 s, even with
// no call in flight. The manager's connections ping every
// clientmanager.Config.KeepaliveTime (at least 10 s) whether or not they
// carry calls; a server that enforced grpc's default (5 min, and no pings
// without a stream) would close them with "too_many_pings".
// Runner.ServerOptions includes it; a server built without a Runner adds
// grpc.KeepaliveEnforcementPolicy(startup.KeepalivePolicy()).
func KeepalivePolicy() keepalive.EnforcementPolicy {
	return keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}
}
