package startup

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
)

// The policy admits the pings of every keepalive interval the manager
// accepts: one shorter than MinTime is refused by the manager's Validate.
func TestKeepalivePolicyAdmitsTheManagersPings(t *testing.T) {
	p := KeepalivePolicy()
	require.True(t, p.PermitWithoutStream, "idle connections ping too")

	cfg := clientmanager.DefaultConfig()
	require.GreaterOrEqual(t, cfg.KeepaliveTime, p.MinTime)
	cfg.KeepaliveTime = p.MinTime - 1
	require.Error(t, cfg.Validate(), "a KeepaliveTime below the policy's MinTime must be refused")
}
