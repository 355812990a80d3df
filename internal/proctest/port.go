package proctest

import (
	"testing"

	"github.com/coordkit/clientmanager/internal/freeport"
)

// FreePorts returns n distinct loopback ports that are free now, taken
// below the kernel's ephemeral range (32768–60999 by default on Linux)
// and apart from the ports of internal/etcdtest: a process restarted on
// its port must not find it taken by some connection's local end.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := freeport.InRange(portBase, portSpan, n)
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	return ports
}

// etcdtest takes its ports in [20000, 32000); these do not overlap.
const portBase, portSpan = 12000, 8000
