package freeport

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// The ports are distinct, in the range, and free: each can be listened on.
// The range is apart from those of internal/embedetcd and internal/proctest,
// whose tests may run at the same time.
func TestInRangeDistinctAndFree(t *testing.T) {
	ports, err := InRange(10000, 2000, 8)
	require.NoError(t, err)
	require.Len(t, ports, 8)
	seen := map[int]bool{}
	for _, p := range ports {
		require.False(t, seen[p], "distinct")
		seen[p] = true
		require.GreaterOrEqual(t, p, 10000)
		require.Less(t, p, 12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		require.NoError(t, err)
		require.NoError(t, l.Close())
	}
}

// Asking for more ports than the range holds is an error, not a hang.
func TestInRangeTooManyIsAnError(t *testing.T) {
	_, err := InRange(10000, 2, 3)
	require.ErrorContains(t, err, "no 3 free ports in [10000, 10002)")
}
