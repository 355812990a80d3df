package clientmanager

import (
	"context"
	"sync"
	"testing"

	"github.com/jonboulle/clockwork"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
)

// rwBaseline is the obvious alternative to the snapshot: the same lookups
// under a sync.RWMutex, measured side by side.
type rwBaseline struct {
	mu    sync.RWMutex
	nodes map[int64]*Client
	ids   map[string][]int64
	bal   balancer.Balancer
}

func (b *rwBaseline) IsOnline(id int64) bool {
	b.mu.RLock()
	_, ok := b.nodes[id]
	b.mu.RUnlock()
	return ok
}

func (b *rwBaseline) IsRoleOnline(role string) bool {
	b.mu.RLock()
	ok := len(b.ids[role]) > 0
	b.mu.RUnlock()
	return ok
}

func (b *rwBaseline) ClientByID(id int64) (*Client, error) {
	b.mu.RLock()
	c := b.nodes[id]
	b.mu.RUnlock()
	if c == nil {
		return nil, ErrServiceUnavailable
	}
	return c, nil
}

func (b *rwBaseline) GetClient(role string) (*Client, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	id, ok := b.bal.Pick(b.ids[role], nil)
	if !ok {
		return nil, ErrServiceUnavailable
	}
	return b.nodes[id], nil
}

// benchNodes is how many nodes of one role the benchmarks look up.
const benchNodes = 100

func benchSetup(b *testing.B) (*Manager, *rwBaseline) {
	b.Helper()
	m, bal := newRegistryManager(b)
	return m, fillBench(b, m, bal)
}

// fillBench puts benchNodes online nodes of testRole in m's registry and
// returns the baseline with the same nodes.
func fillBench(b *testing.B, m *Manager, bal balancer.Balancer) *rwBaseline {
	b.Helper()
	base := &rwBaseline{nodes: map[int64]*Client{}, ids: map[string][]int64{}, bal: bal}
	for id := int64(1); id <= benchNodes; id++ {
		c := registryNode(m, bal, id)
		m.reg.setState(c, NodeOnline, nil)
		base.nodes[id] = c
		base.ids[testRole] = append(base.ids[testRole], id)
	}
	if len(m.GetClients(testRole)) != benchNodes {
		b.Fatal("registry not filled")
	}
	return base
}

func runBench(b *testing.B, serial func(i int64), parallel func(i int64)) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := int64(0); b.Loop(); i++ {
			serial(i%benchNodes + 1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var i int64
			for pb.Next() {
				i++
				parallel(i%benchNodes + 1)
			}
		})
	})
}

func BenchmarkIsOnline(b *testing.B) {
	m, base := benchSetup(b)
	b.Run("snapshot", func(b *testing.B) {
		f := func(id int64) {
			if !m.IsOnline(id) {
				b.Fatal("offline")
			}
		}
		runBench(b, f, f)
	})
	b.Run("rwmutex", func(b *testing.B) {
		f := func(id int64) {
			if !base.IsOnline(id) {
				b.Fatal("offline")
			}
		}
		runBench(b, f, f)
	})
}

func BenchmarkIsRoleOnline(b *testing.B) {
	m, base := benchSetup(b)
	b.Run("snapshot", func(b *testing.B) {
		f := func(int64) {
			if !m.IsRoleOnline(testRole) {
				b.Fatal("offline")
			}
		}
		runBench(b, f, f)
	})
	b.Run("rwmutex", func(b *testing.B) {
		f := func(int64) {
			if !base.IsRoleOnline(testRole) {
				b.Fatal("offline")
			}
		}
		runBench(b, f, f)
	})
}

func BenchmarkClientByID(b *testing.B) {
	m, base := benchSetup(b)
	b.Run("snapshot", func(b *testing.B) {
		f := func(id int64) {
			c, err := m.ClientByID(id)
			if err != nil || c.id != id {
				b.Fatal("wrong client")
			}
		}
		runBench(b, f, f)
	})
	b.Run("rwmutex", func(b *testing.B) {
		f := func(id int64) {
			c, err := base.ClientByID(id)
			if err != nil || c.id != id {
				b.Fatal("wrong client")
			}
		}
		runBench(b, f, f)
	})
}

func BenchmarkGetClient(b *testing.B) {
	m, base := benchSetup(b)
	b.Run("snapshot-roundrobin", func(b *testing.B) {
		m, err := newManager(nil, DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		rr := balancer.NewRoundRobin()
		m.reg.addRole(testRole, rr, &roleShared{budget: newRetryBudget(m.cfg.RetryBudget, m.clock)})
		fillBench(b, m, rr)
		f := func(int64) {
			c, err := m.GetClient(testRole)
			if err != nil || c == nil {
				b.Fatal("no client")
			}
		}
		runBench(b, f, f)
	})
	b.Run("snapshot", func(b *testing.B) {
		f := func(int64) {
			c, err := m.GetClient(testRole)
			if err != nil || c == nil {
				b.Fatal("no client")
			}
		}
		runBench(b, f, f)
	})
	b.Run("rwmutex", func(b *testing.B) {
		f := func(int64) {
			c, err := base.GetClient(testRole)
			if err != nil || c == nil {
				b.Fatal("no client")
			}
		}
		runBench(b, f, f)
	})
}

func BenchmarkInvokeFastFail(b *testing.B) {
	m, _ := newRegistryManager(b)
	call := func(_ context.Context, _ *Client) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Invoke(context.Background(), testRole, call); err == nil {
			b.Fatal("no fast fail")
		}
	}
}

// BenchmarkInvokeOverhead measures what Invoke adds to a call: the same
// grpc.health.v1 Check on the same in-process service (the Standalone
// connector, no network), made directly on the connection, through a
// Client's Conn (identity metadata, node binding), and through Invoke on a
// role of three nodes (route, breaker, bulkhead, balancer, attempt
// context and timeout, retry budget, statistics).
func BenchmarkInvokeOverhead(b *testing.B) {
	sa := NewStandalone()
	sa.RegisterService(&healthpb.Health_ServiceDesc, health.NewServer())
	m, clients := unitManager(b, clockwork.NewRealClock(), 3, nil, ok)
	for _, c := range clients {
		conn, err := sa.Dial(context.Background(), c.Session())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		c.setConn(conn)
	}
	direct := healthpb.NewHealthClient(clients[0].conn())
	viaConn := healthpb.NewHealthClient(clients[0].Conn())
	req := &healthpb.HealthCheckRequest{}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		call func() error
	}{
		{"direct", func() error { _, err := direct.Check(ctx, req); return err }},
		{"client-conn", func() error { _, err := viaConn.Check(ctx, req); return err }},
		{"invoke", func() error { return m.Invoke(ctx, testRole, healthCheck) }},
	} {
		b.Run(bc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.call(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
