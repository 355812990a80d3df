package embedetcd

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

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
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		port := lowPortBase + rand.IntN(lowPortSpan)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("embedetcd: no %d free ports in [%d, %d)", n, lowPortBase, lowPortBase+lowPortSpan)
	}
	return ports, nil
}
