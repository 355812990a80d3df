package embedetcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// StartCluster runs a new cluster of len(cfgs) members and waits until
// every member serves, for at most the first member's ReadyTimeout. A
// member without a Name is named m<i>; ports left 0 are chosen; every
// member's InitialCluster lists them all. On error nothing is left
// running.
func StartCluster(ctx context.Context, cfgs []Config) ([]*Etcd, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("embedetcd: a cluster needs a member")
	}
	cfgs = append([]Config(nil), cfgs...)
	ports, err := FreePorts(2 * len(cfgs))
	if err != nil {
		return nil, err
	}
	peers := make([]string, len(cfgs))
	for i := range cfgs {
		c := &cfgs[i]
		if c.Name == "" {
			c.Name = fmt.Sprintf("m%d", i)
		}
		if c.ClientPort == 0 {
			c.ClientPort = ports[2*i]
		}
		if c.PeerPort == 0 {
			c.PeerPort = ports[2*i+1]
		}
		peers[i] = c.Name + "=" + c.PeerURL()
	}
	ic := strings.Join(peers, ",")
	ms := make([]*Etcd, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i := range cfgs {
		cfgs[i].InitialCluster = ic
		// Members may block on each other while they bootstrap: start
		// them together.
		wg.Go(func() { ms[i], errs[i] = Launch(cfgs[i]) })
	}
	wg.Wait()
	closeAll := func() {
		for _, m := range ms {
			if m != nil {
				m.Close()
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		closeAll()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, ms[0].cfg.ReadyTimeout)
	defer cancel()
	for _, m := range ms {
		if err := m.WaitReady(ctx); err != nil {
			closeAll()
			return nil, err
		}
	}
	return ms, nil
}
