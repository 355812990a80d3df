package clientmanager

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
)

// A snapshot finds every known role and no other, whether it scans its
// short list (maxScannedRoles roles or fewer) or, past that, its map.
func TestSnapshotFindsRolesScannedAndHashed(t *testing.T) {
	m, err := newManager(nil, DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	var roles []string
	for i := range maxScannedRoles + 3 {
		role := fmt.Sprintf("role%d", i)
		bal, err := balancer.New(balancer.DefaultConfig())
		require.NoError(t, err)
		m.reg.addRole(role, bal, m.newRoleShared(role))
		roles = append(roles, role)

		s := m.reg.load()
		if len(roles) <= maxScannedRoles {
			require.Len(t, s.few, len(roles), "listed while few")
		} else {
			require.Nil(t, s.few, "hashed past maxScannedRoles")
		}
		for _, r := range roles {
			v := s.role(r)
			require.NotNil(t, v, "%s among %d roles", r, len(roles))
			require.Same(t, s.roles[r], v)
		}
		require.Nil(t, s.role("unknown"))
		require.Nil(t, s.role(""))
	}
}
