// Package freeport finds loopback ports that are free now, in a range of
// the caller's choosing: below the kernel's ephemeral range (32768–60999
// by default on Linux), a process restarted on its port does not find it
// taken by the local end of some connection, as it could with a port of
// 127.0.0.1:0.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// InRange returns n distinct ports of 127.0.0.1 in [base, base+span) that
// are free now, taken at random.
func InRange(base, span, n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		port := base + rand.IntN(span)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken, or handed out in this call
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("freeport: no %d free ports in [%d, %d)", n, base, base+span)
	}
	return ports, nil
}
