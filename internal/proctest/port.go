package proctest

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// FreePorts returns n distinct loopback ports that are free now, taken
// below the kernel's ephemeral range (32768–60999 by default on Linux)
// and apart from the ports of internal/etcdtest: a process restarted on
// its port must not find it taken by some connection's local end.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		port := portBase + rand.IntN(portSpan)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken, or handed out in this call
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	if len(ports) < n {
		t.Fatalf("proctest: no %d free ports in [%d, %d)", n, portBase, portBase+portSpan)
	}
	return ports
}

// etcdtest takes its ports in [20000, 32000); these do not overlap.
const portBase, portSpan = 12000, 8000
