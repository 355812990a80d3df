package clientmanager

import (
	"context"
	"testing"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
)

// With round robin, the look-ahead of a retry takes no turn: every node
// takes first attempts in turn, and each retry goes where it looked.
func TestRoundRobinRetryDoesNotSkipNodes(t *testing.T) {
	m, _ := unitManager(t, clockwork.NewFakeClock(), 3, func(c *Config) {
		c.Balancer.Policy = balancer.PolicyRoundRobin
		noBreaker(c)
	}, func(context.Context, int64) error { return nil })
	var firsts, retries []int64
	for range 6 {
		var ids []int64
		err := m.Invoke(context.Background(), testRole, func(_ context.Context, c *Client) error {
			ids = append(ids, c.NodeID())
			if len(ids) == 1 {
				return status.Error(codes.Unavailable, "first attempt fails")
			}
			return nil
		}, Idempotent())
		require.NoError(t, err)
		require.Len(t, ids, 2)
		firsts, retries = append(firsts, ids[0]), append(retries, ids[1])
	}
	require.Equal(t, []int64{1, 3, 2, 1, 3, 2}, firsts)
	require.Equal(t, []int64{3, 2, 3, 3, 2, 3}, retries)
}
