package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// TestPeerTable measures the client manager side by side with etcd's
// naming resolver (go.etcd.io/etcd/client/v3/naming/endpoints and
// naming/resolver, grpc round_robin; plain and with a retry policy on
// UNAVAILABLE): one embedded etcd, the same gRPC servers (3 replicas, one
// of them replaced in each repetition), the same load (2 goroutines
// calling in a loop), repetitions interleaved (the systems take turns,
// in a rotating order). It prints one table; PEER_RUNS sets the
// repetitions (default 3: a smoke run; make bench-peer runs 100).
//
// Each repetition, for each system, starts a new server (the third
// replica) and measures:
//
//   - Add: the registration call, then the time from its return until the
//     first call of the load reaches the new server;
//   - Del: the deregistration call (ours: MarkStopping, the first write of
//     a graceful deregistration; the peer: DeleteEndpoint), and the time
//     from its start until the server receives its last call;
//   - crash: the node is registered again, then its server stops hard
//     (grpc.Server.Stop: listener and connections closed; the registration
//     stays, as a crashed process's lease does); the time until the load
//     last opens a stream on a transport to the dead node (the same
//     stats.Handler on every system's connections), and the calls that
//     failed; for ours also until Invoke last gives it an attempt.
//
// Calls that fail in each scenario are counted. Then one unary call over
// loopback through each system, serial and parallel (testing.Benchmark,
// interleaved, median of 5).
func TestPeerTable(t *testing.T) {
	runs := 3
	if s := os.Getenv("PEER_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PEER_RUNS (%q) must be a positive integer", s)
		}
		runs = n
	}
	etcd := etcdtest.Start(t)
	base := time.Now()
	regCli := etcdtest.NewClient(t, etcd.Endpoint())

	seen := &attempts{base: base}
	systems := []system{
		newOurs(t, regCli, etcdtest.NewClient(t, etcd.Endpoint()), seen),
		newPeer(t, "peer", regCli, etcdtest.NewClient(t, etcd.Endpoint()), roundRobin, seen),
		newPeer(t, "peer+retry", regCli, etcdtest.NewClient(t, etcd.Endpoint()), retryPolicy, seen),
	}
	defer func() {
		for _, s := range systems {
			s.close()
		}
	}()
	h := &harness{t: t, base: base, seen: seen, res: map[string]*results{}}
	// Two stable replicas, registered in every system.
	var stable []*node
	for range 2 {
		n := startNode(t, base)
		stable = append(stable, n)
		for _, s := range systems {
			reg, err := s.register(h.ctx(), n.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.finish(context.Background(), reg) }()
		}
	}
	for _, s := range systems {
		h.res[s.name()] = &results{}
		h.waitCalls(s, stable[0], stable[1])
	}
	for i := range runs {
		for k := range systems {
			s := systems[(i+k)%len(systems)]
			h.repetition(s)
		}
	}
	calls := benchCalls(t, systems)
	fmt.Print(h.table(runs, calls))
}

// harness runs the scenarios and keeps their figures.
type harness struct {
	t    *testing.T
	base time.Time
	seen *attempts
	res  map[string]*results
}

// results are one system's figures; failed counts calls per scenario.
type results struct {
	addReg, addFirst, del, delCall, crash []time.Duration
	crashPicked                           []time.Duration // ours: Invoke attempts given the dead node
	failedAdd, failedDel, failedCrash     int64
}

// waitTimeout bounds every wait of the harness.
const waitTimeout = 20 * time.Second

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	h.t.Cleanup(cancel)
	return ctx
}

func (h *harness) now() int64 { return int64(time.Since(h.base)) }

// load runs 2 calling goroutines on s until the returned stop is called;
// stop returns the number of failed calls.
func (h *harness) load(s system) (stop func() int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				if err := s.call(cctx); err != nil && ctx.Err() == nil {
					failed.Add(1)
				}
				ccancel()
			}
		}()
	}
	return func() int64 {
		cancel()
		wg.Wait()
		return failed.Load()
	}
}

// waitCalls runs the load until every node got a call from s.
func (h *harness) waitCalls(s system, ns ...*node) {
	stop := h.load(s)
	defer stop()
	before := make([]int64, len(ns))
	for i, n := range ns {
		before[i] = n.hits.Load()
	}
	h.until(fmt.Sprintf("%s: every node called", s.name()), func() bool {
		for i, n := range ns {
			if n.hits.Load()-before[i] < 20 {
				return false
			}
		}
		return true
	})
}

// until polls cond every 100 µs until it holds, at most waitTimeout.
func (h *harness) until(what string, cond func() bool) {
	require.Eventually(h.t, cond, waitTimeout, 100*time.Microsecond, "%s: not within %s", what, waitTimeout)
}

// quietPeriod is how long an address must go without a call (or an
// attempt) after the change that ends its calls before its last one is
// taken as final: at ~4 calls per ms of the load over 2–3 replicas, a
// node still in routing gets dozens in that time.
const quietPeriod = 50 * time.Millisecond

// settle waits until *last has not moved for quietPeriod and returns it.
func (h *harness) settle(what string, last *atomic.Int64) int64 {
	prev, since := last.Load(), time.Now()
	h.until(what, func() bool {
		if cur := last.Load(); cur != prev {
			prev, since = cur, time.Now()
		}
		return time.Since(since) >= quietPeriod
	})
	return prev
}

// repetition measures Add, Del and crash of a new node in s.
func (h *harness) repetition(s system) {
	t, r := h.t, h.res[s.name()]
	n := startNode(t, h.base)
	stop := h.load(s)

	// Add.
	n.armFirst()
	t0 := time.Now()
	reg, err := s.register(h.ctx(), n.addr)
	if err != nil {
		t.Fatalf("%s: register: %v", s.name(), err)
	}
	ret := h.now()
	r.addReg = append(r.addReg, time.Since(t0))
	h.until(s.name()+": first call of a new node", func() bool { return n.first.Load() != 0 })
	r.addFirst = append(r.addFirst, time.Duration(max(0, n.first.Load()-ret)))
	h.until(s.name()+": new node in rotation", func() bool { return n.hits.Load() >= 20 })
	r.failedAdd += stop()

	// Del.
	stop = h.load(s)
	h.until(s.name()+": calls flowing", func() bool { return n.hits.Load() >= 40 })
	start := h.now()
	if err := s.deregister(h.ctx(), reg); err != nil {
		t.Fatalf("%s: deregister: %v", s.name(), err)
	}
	r.delCall = append(r.delCall, time.Duration(h.now()-start))
	last := h.settle(s.name()+": removed node no longer called", &n.last)
	r.del = append(r.del, time.Duration(max(0, last-start)))
	r.failedDel += stop()
	if err := s.finish(h.ctx(), reg); err != nil {
		t.Fatalf("%s: finish: %v", s.name(), err)
	}

	// Crash.
	reg, err = s.register(h.ctx(), n.addr)
	if err != nil {
		t.Fatalf("%s: register again: %v", s.name(), err)
	}
	stop = h.load(s)
	hits := n.hits.Load()
	h.until(s.name()+": node in rotation again", func() bool { return n.hits.Load()-hits >= 20 })
	h.seen.watch(n.addr)
	start = h.now()
	n.srv.Stop()
	last = h.settle(s.name()+": dead node no longer attempted", &h.seen.last)
	r.crash = append(r.crash, time.Duration(max(0, last-start)))
	if picked := h.seen.picked.Load(); picked != 0 {
		r.crashPicked = append(r.crashPicked, time.Duration(max(0, picked-start)))
	}
	r.failedCrash += stop()
	h.seen.watched.Store(nil)
	if err := s.finish(h.ctx(), reg); err != nil {
		t.Fatalf("%s: finish after crash: %v", s.name(), err)
	}
}

// callCost is one system's unary call over loopback.
type callCost struct {
	serial, parallel time.Duration
	allocs           int64
}

// benchCalls measures one unary call through each system's connection,
// serial and parallel, 5 interleaved rounds; the median of each.
//
// A fourth row, peerHeaders, is the peer's connection with the headers
// every call of ours carries and the peer's do not (the target's identity
// and a request ID, added as ours adds them): ours ÷ peerHeaders is the
// manager's own cost, apart from what those headers cost on the wire and
// at the server.
func benchCalls(t *testing.T, systems []system) map[string]callCost {
	const rounds = 5
	type conn struct {
		name string
		cc   grpc.ClientConnInterface
	}
	var conns []conn
	for _, s := range systems {
		conns = append(conns, conn{s.name(), s.conn()})
		if s.name() == "peer" {
			conns = append(conns, conn{peerHeaders, withOursHeaders(s.conn())})
		}
	}
	serial := map[string][]time.Duration{}
	parallel := map[string][]time.Duration{}
	allocs := map[string][]time.Duration{}
	for range rounds {
		for _, s := range conns {
			cc := s.cc
			call := func() error {
				return cc.Invoke(context.Background(), echoMethod, healthRequest(), healthResponse())
			}
			var failed atomic.Bool
			res := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if call() != nil {
						failed.Store(true)
					}
				}
			})
			serial[s.name] = append(serial[s.name], time.Duration(res.NsPerOp()))
			allocs[s.name] = append(allocs[s.name], time.Duration(res.AllocsPerOp()))
			res = testing.Benchmark(func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if call() != nil {
							failed.Store(true)
						}
					}
				})
			})
			parallel[s.name] = append(parallel[s.name], time.Duration(res.NsPerOp()))
			if failed.Load() {
				t.Fatalf("%s: a loopback call failed", s.name)
			}
		}
	}
	out := map[string]callCost{}
	for _, s := range conns {
		n := s.name
		out[n] = callCost{serial: median(serial[n]), parallel: median(parallel[n]), allocs: int64(median(allocs[n]))}
	}
	return out
}

// peerHeaders names the peer's connection carrying ours' headers.
const peerHeaders = "peer + ours' headers"

// oursHeaders adds to each call what a call of ours carries that the
// peer's does not: the target's identity (ServerID, LeaseID,
// Incarnation) and a new request ID, with the identity package as the
// manager uses it.
type oursHeaders struct {
	grpc.ClientConnInterface
	target *identity.Target
	ids    *identity.RequestIDs
}

func withOursHeaders(cc grpc.ClientConnInterface) grpc.ClientConnInterface {
	return oursHeaders{
		ClientConnInterface: cc,
		target:              identity.NewTarget(session.Session{ServerID: 12, LeaseID: 7587890123456789012, Incarnation: session.NewIncarnation()}),
		ids:                 identity.NewRequestIDs(),
	}
}

func (o oursHeaders) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return o.ClientConnInterface.Invoke(o.target.Outgoing(ctx, o.ids.Next()), method, args, reply, opts...)
}
