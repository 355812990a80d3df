package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/startup"
)

// dialResult is one run of the black-hole measurement.
type dialResult struct {
	nodes, holes int
	reachable    time.Duration // AddDependency → every reachable node online
	added        time.Duration // a node added after that → online
	unreachable  time.Duration // AddDependency → every black hole unreachable
	dialTimeout  time.Duration
}

// measureDial registers n nodes, every holeEvery-th of them a black hole
// (a listener that accepts TCP connections and never speaks), the others
// served by one real gRPC server, and runs a manager with the default
// Config on them. It times every reachable node online, then a node added
// while the black holes are still being dialed, then every black hole
// unreachable.
func measureDial(ctx context.Context, cl *cluster, n, holeEvery int) (dialResult, error) {
	cfg := clientmanager.DefaultConfig()
	cfg.SessionConfig.RootPath = "cmscale/dial"
	res := dialResult{nodes: n, dialTimeout: cfg.DialTimeout}
	srv := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(startup.KeepalivePolicy()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	defer srv.Stop()
	var holes blackHoles
	defer holes.close()

	addrs := make(map[int64]string, n+1)
	var holeIDs []int64
	for id := int64(1); id <= int64(n)+1; id++ {
		if id <= int64(n) && id%int64(holeEvery) == 0 {
			addr, err := holes.listen()
			if err != nil {
				return res, err
			}
			addrs[id] = addr
			holeIDs = append(holeIDs, id)
			continue
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		go func() { _ = srv.Serve(lis) }()
		addrs[id] = lis.Addr().String()
	}
	res.holes = len(holeIDs)
	addr := func(id int64) string { return addrs[id] }
	if err := putSessions(ctx, cl.cli, cfg.SessionConfig, role, 1, n, addr); err != nil {
		return res, err
	}

	m, err := clientmanager.New(cl.cli, cfg)
	if err != nil {
		return res, err
	}
	defer m.Close()
	start := time.Now()
	if err := m.AddDependency(role); err != nil {
		return res, err
	}
	reachable := n - len(holeIDs)
	if err := waitFor(ctx, 5*time.Minute, time.Millisecond, func() bool { return len(m.GetClients(role)) == reachable }); err != nil {
		return res, fmt.Errorf("%d reachable nodes online: %w", reachable, err)
	}
	res.reachable = time.Since(start)

	added := int64(n) + 1
	addStart := time.Now()
	if err := putSessions(ctx, cl.cli, cfg.SessionConfig, role, added, 1, addr); err != nil {
		return res, err
	}
	if err := waitFor(ctx, 5*time.Minute, time.Millisecond, func() bool { return m.IsOnline(added) }); err != nil {
		return res, fmt.Errorf("added node online: %w", err)
	}
	res.added = time.Since(addStart)

	limit := 10 * cfg.DialTimeout
	if err := waitFor(ctx, limit, 100*time.Millisecond, func() bool {
		unreachable := 0
		for _, st := range m.Status() {
			if st.State == clientmanager.NodeUnreachable {
				unreachable++
			}
		}
		return unreachable == len(holeIDs)
	}); err != nil {
		return res, fmt.Errorf("black holes unreachable: %w", err)
	}
	res.unreachable = time.Since(start)
	return res, nil
}

// blackHoles are listeners that accept TCP connections and never speak.
type blackHoles struct {
	mu    sync.Mutex
	lis   []net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

func (b *blackHoles) listen() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.lis = append(b.lis, lis)
	b.mu.Unlock()
	b.wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	})
	return lis.Addr().String(), nil
}

func (b *blackHoles) close() {
	b.mu.Lock()
	for _, l := range b.lis {
		_ = l.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	for _, c := range b.conns {
		_ = c.Close()
	}
}
