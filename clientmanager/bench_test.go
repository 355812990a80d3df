package clientmanager

import (
	"context"
	"sync"
	"testing"
	"time"

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
// returns the baseline with the same nodes. Each node has served a call, so
// the balancer knows them all, as in a manager in use.
func fillBench(b *testing.B, m *Manager, bal balancer.Balancer) *rwBaseline {
	b.Helper()
	base := &rwBaseline{nodes: map[int64]*Client{}, ids: map[string][]int64{}, bal: bal}
	for id := int64(1); id <= benchNodes; id++ {
		c := registryNode(m, bal, id)
		m.reg.setState(c, NodeOnline, nil)
		bal.Start(id).Done(time.Millisecond, nil)
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
		m.reg.addRole(testRole, rr, m.newRoleShared(testRole))
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
