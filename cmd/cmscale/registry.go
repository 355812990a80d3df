package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
)

// registryResult is the best of the runs of New → all online with an
// instant dialer at one node count.
type registryResult struct {
	nodes int
	runs  int
	took  time.Duration
	alloc uint64 // bytes allocated by this process meanwhile
}

// measureRegistry registers n sessions, then times new managers from New
// until every node is online, with a dialer whose connections are READY at
// once: what is left is the manager's own work (watcher, connectors,
// registry). It keeps the fastest of runs runs: the machine is shared, and
// the fastest run is the one others disturbed least. With memprofile set
// it writes allocation profiles around each run (.<n>.base and .<n>).
func measureRegistry(ctx context.Context, cl *cluster, n, runs int, memprofile string) (registryResult, error) {
	cfg := clientmanager.DefaultConfig()
	cfg.SessionConfig.RootPath = fmt.Sprintf("cmscale/registry-%d", n)
	if err := putSessions(ctx, cl.cli, cfg.SessionConfig, role, 1, n, func(id int64) string {
		return fmt.Sprintf("10.%d.%d.%d:19530", id>>16&255, id>>8&255, id&255)
	}); err != nil {
		return registryResult{}, err
	}
	best := registryResult{nodes: n, runs: runs}
	for i := range runs {
		took, alloc, err := registryRun(ctx, cl, cfg, n, memprofile)
		if err != nil {
			return best, err
		}
		if i == 0 || took < best.took {
			best.took, best.alloc = took, alloc
		}
	}
	return best, nil
}

// registryRun is one run of measureRegistry.
func registryRun(ctx context.Context, cl *cluster, cfg clientmanager.Config, n int, memprofile string) (time.Duration, uint64, error) {
	profile := func(string) error { return nil }
	if memprofile != "" {
		profile = func(suffix string) error { return writeMemProfile(fmt.Sprintf("%s.%d%s", memprofile, n, suffix)) }
	}
	if err := profile(".base"); err != nil {
		return 0, 0, err
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	m, err := clientmanager.New(cl.cli, cfg, clientmanager.WithDialer(instantDialer{}))
	if err != nil {
		return 0, 0, err
	}
	defer m.Close()
	if err := m.AddDependency(role); err != nil {
		return 0, 0, err
	}
	if err := waitFor(ctx, 10*time.Minute, time.Millisecond, func() bool { return len(m.GetClients(role)) == n }); err != nil {
		return 0, 0, fmt.Errorf("%d nodes online: %w", n, err)
	}
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err := profile(""); err != nil {
		return 0, 0, err
	}
	return took, after.TotalAlloc - before.TotalAlloc, nil
}

// instantDialer connects at once: its connections are READY, accept every
// call and have no health service (which counts as serving).
type instantDialer struct{}

func (instantDialer) Dial(context.Context, session.Session) (clientmanager.Conn, error) {
	return instantConn{}, nil
}

type instantConn struct{}

func (instantConn) GetState() connectivity.State { return connectivity.Ready }

func (instantConn) WaitForStateChange(ctx context.Context, _ connectivity.State) bool {
	<-ctx.Done()
	return false
}

func (instantConn) Connect()     {}
func (instantConn) Close() error { return nil }

func (instantConn) Invoke(context.Context, string, any, any, ...grpc.CallOption) error { return nil }

func (instantConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "instantConn has no streams")
}

// waitFor polls cond every interval until it holds, ctx ends or limit
// passes.
func waitFor(ctx context.Context, limit, interval time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	t := time.NewTicker(interval)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
