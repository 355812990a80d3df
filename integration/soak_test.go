//go:build integration

package integration

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
)

// The soak's faults.
const (
	faultKill      = "kill -9"
	faultStop      = "SIGTERM"
	faultFreeze    = "SIGSTOP"
	faultPartition = "etcd cut"
	faultEtcd      = "etcd restart"
)

// soakSettings are read from the environment: SOAK_DURATION (required:
// the soak runs only when it is set, as `make soak` does), SOAK_NODES
// (default 50), SOAK_SEED (default: the time).
type soakSettings struct {
	duration time.Duration
	nodes    int
	seed     uint64
}

func soakFromEnv(t *testing.T) soakSettings {
	d := os.Getenv("SOAK_DURATION")
	if d == "" {
		t.Skip("SOAK_DURATION is not set: run `make soak`")
	}
	s := soakSettings{nodes: soakNodes, seed: uint64(time.Now().UnixNano())}
	var err error
	s.duration, err = time.ParseDuration(d)
	require.NoError(t, err, "SOAK_DURATION")
	if v := os.Getenv("SOAK_NODES"); v != "" {
		s.nodes, err = strconv.Atoi(v)
		require.NoError(t, err, "SOAK_NODES")
		require.GreaterOrEqual(t, s.nodes, 4, "SOAK_NODES")
	}
	if v := os.Getenv("SOAK_SEED"); v != "" {
		s.seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "SOAK_SEED")
	}
	return s
}

// TestProcSoak runs node processes under call load and a seeded random
// schedule of faults for SOAK_DURATION: each cycle takes 1 to 3 nodes down
// at once (kill -9, SIGTERM, SIGSTOP, or a cut of their etcd link), or
// restarts etcd, holds 1–4 s, brings everything back, and then checks the
// invariants of a quiet period:
//   - the manager's available set equals etcd's truth (every node, under
//     the ServerID its current process registered) within soakConverge;
//   - no attempt went to a node more than 1 s after the manager knew it
//     was offline;
//   - no call failed but those in flight on a frozen node (at most one per
//     caller and frozen node);
//   - the test process's goroutines and file descriptors do not grow
//     across cycles.
//
// It prints a summary (faults by kind, calls, failures by cause, worst
// convergence time) and the seed: SOAK_SEED=<seed> replays the schedule.
func TestProcSoak(t *testing.T) {
	s := soakFromEnv(t)
	t.Logf("soak: %s, %d nodes, seed %d (SOAK_SEED=%d replays the schedule)", s.duration, s.nodes, s.seed, s.seed)
	rng := rand.New(rand.NewPCG(s.seed, s.seed^0x9e3779b97f4a7c15))
	c := startCluster(t, clusterConfig{bin: "node", role: role, n: s.nodes})
	c.startAll()
	c.waitAvailable(c.nodes...)
	l := c.load(loadCallers, loadPace)

	var (
		faults   = make(map[string]int)
		frozen   int // freeze faults: each may fail the calls in flight on it
		worst    time.Duration
		cycles   int
		baseline resources
		last     resources
	)
	end := time.Now().Add(s.duration)
	for time.Now().Before(end) {
		cycles++
		kind, down := schedule(rng, c.nodes)
		faults[kind] += max(1, len(down))
		if kind == faultFreeze {
			frozen += len(down)
		}
		hold := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
		if kind == faultEtcd {
			c.etcd.Stop(t)
			time.Sleep(hold) // the fault's duration, drawn from the seed
			c.etcd.Restart(t)
		} else {
			for _, n := range down {
				inject(t, kind, n)
			}
			time.Sleep(hold) // the fault's duration, drawn from the seed
			for _, n := range down {
				bringBack(kind, n)
			}
		}
		recovered := time.Now()
		at, ok := c.awaitAvailable(soakConverge, c.nodes...)
		if !ok {
			if !c.recoverRace() { // fails on the registration race, else below with the status
				c.waitAvailable(c.nodes...) // fails with the manager's status
			}
			at = c.waitAvailable(c.nodes...)
		} else if d := at.Sub(recovered); d > worst {
			worst = d
		}
		// A quiet period: calls go on with every node up.
		l.waitCalls(t, 100)
		r := measure()
		// The baseline is the higher of the first two cycles' samples: the
		// first warms every pool up, and a sample taken while the nodes'
		// etcd connections come back after an etcd restart is lower than
		// the steady level (embedded etcd's goroutines count here too).
		if cycles <= 2 {
			baseline = baseline.max(r)
		}
		last = r
		t.Logf("cycle %d: %s on %s for %s; converged %s after the recovery; %d calls so far; %s",
			cycles, kind, names(down), hold, round(at.Sub(recovered)), l.count(), r)
	}
	_, failed := l.stop()
	all := l.snapshot()

	// Invariants over the whole run.
	late := lateAttempts(c, all, time.Second)
	var byCause = make(map[string]int)
	for _, o := range failed {
		byCause[cause(o.err)]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "soak summary (seed %d, %s, %d nodes, %d cycles)\n", s.seed, s.duration, s.nodes, cycles)
	for _, k := range slices.Sorted(maps.Keys(faults)) {
		fmt.Fprintf(&b, "  faults %-14s %6d\n", k, faults[k])
	}
	fmt.Fprintf(&b, "  calls                 %6d\n", len(all))
	for _, k := range slices.Sorted(maps.Keys(byCause)) {
		fmt.Fprintf(&b, "  failed: %-13s %6d\n", k, byCause[k])
	}
	fmt.Fprintf(&b, "  retried calls         %6d\n", summarise(c, all).retried)
	fmt.Fprintf(&b, "  attempts > 1 s after offline %d\n", len(late))
	fmt.Fprintf(&b, "  worst convergence     %s\n", round(worst))
	fmt.Fprintf(&b, "  resources: first two cycles (highest) %s; at the end %s\n", baseline, last)
	t.Log(b.String())

	require.Less(t, worst, soakConverge, "convergence")
	require.Empty(t, late, "attempts to a node the manager knew offline for more than 1 s")
	if len(failed) > frozen*loadCallers {
		logFailures(t, c, all, 10)
		t.Errorf("%d calls failed; at most %d (the calls in flight on %d frozen nodes) may", len(failed), frozen*loadCallers, frozen)
	}
	if cycles > 2 {
		require.LessOrEqual(t, last.goroutines, baseline.goroutines+50, "goroutines grow")
		require.LessOrEqual(t, last.fds, baseline.fds+20, "file descriptors grow")
	}
}

// soakNodes is the default number of node processes.
const soakNodes = 50

// soakConverge bounds the convergence after a cycle's recovery: the
// target is 2 s; the bound allows a loaded 2-core machine.
const soakConverge = 5 * time.Second

// schedule draws a cycle's fault and the nodes it hits (none for an etcd
// restart).
func schedule(rng *rand.Rand, nodes []*procNode) (string, []*procNode) {
	kinds := []string{faultKill, faultStop, faultFreeze, faultPartition, faultEtcd}
	kind := kinds[rng.IntN(len(kinds))]
	if kind == faultEtcd {
		return kind, nil
	}
	n := 1 + rng.IntN(3)
	perm := rng.Perm(len(nodes))[:n]
	down := make([]*procNode, n)
	for i, j := range perm {
		down[i] = nodes[j]
	}
	return kind, down
}

func inject(t *testing.T, kind string, n *procNode) {
	switch kind {
	case faultKill:
		n.kill()
	case faultStop:
		// Stop without waiting for the exit: the others are hit meanwhile.
		n.p.Stop()
	case faultFreeze:
		n.p.Freeze()
	case faultPartition:
		n.etcd.Cut(t)
	}
}

func bringBack(kind string, n *procNode) {
	switch kind {
	case faultKill:
		restart(n)
	case faultStop:
		require.NoError(n.c.t, n.p.WaitExit(procWait), "%s exits cleanly after SIGTERM", n.name)
		restart(n)
	case faultFreeze:
		n.p.Thaw()
	case faultPartition:
		n.etcd.Restore(n.c.t)
	}
}

func names(ns []*procNode) string {
	if len(ns) == 0 {
		return "etcd"
	}
	var out []string
	for _, n := range ns {
		out = append(out, n.name)
	}
	return strings.Join(out, ",")
}

// lateAttempts returns the attempts that began on a node more than grace
// after the manager's ClientOffline for its address, with no ClientOnline
// since.
func lateAttempts(c *cluster, all []outcome, grace time.Duration) []attemptAt {
	c.events.mu.Lock()
	events := slices.Clone(c.events.events)
	c.events.mu.Unlock()
	var late []attemptAt
	for _, o := range all {
		for _, a := range o.tried {
			var offlineAt time.Time
			for _, e := range events {
				if e.addr != a.addr || e.at.After(a.at) {
					continue
				}
				if e.typ == clientmanager.ClientOffline {
					offlineAt = e.at
				} else {
					offlineAt = time.Time{}
				}
			}
			if !offlineAt.IsZero() && a.at.Sub(offlineAt) > grace {
				late = append(late, a)
			}
		}
	}
	return late
}

// cause names a failure's kind for the summary.
func cause(err error) string {
	switch {
	case errors.Is(err, clientmanager.ErrServiceUnavailable):
		return "unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	}
	return "other"
}

// resources are the test process's goroutines, open files and heap.
type resources struct {
	goroutines, fds int
	heap            uint64
}

// max returns the higher of r's and o's figures, each on its own.
func (r resources) max(o resources) resources {
	return resources{goroutines: max(r.goroutines, o.goroutines), fds: max(r.fds, o.fds), heap: max(r.heap, o.heap)}
}

func measure() resources {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, _ := os.ReadDir("/proc/self/fd")
	return resources{goroutines: runtime.NumGoroutine(), fds: len(fds), heap: ms.HeapInuse}
}

func (r resources) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, heap %d MiB", r.goroutines, r.fds, r.heap>>20)
}
