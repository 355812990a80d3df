package embedetcd

import "github.com/coordkit/clientmanager/internal/freeport"

// The range FreePorts takes ports from: below the kernel's ephemeral range
// (32768–60999 by default on Linux), from which the local ends of outgoing
// connections are taken.
const (
	lowPortBase = 20000
	lowPortSpan = 12000
)

// FreePorts returns n distinct ports of 127.0.0.1 that are free now, taken
// at random in [20000, 32000): below the kernel's ephemeral range, so that
// a member restarted on its port does not find it taken by the local end
// of some connection, as it could with a port of 127.0.0.1:0.
func FreePorts(n int) ([]int, error) {
	return freeport.InRange(lowPortBase, lowPortSpan, n)
}
