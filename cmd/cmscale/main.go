// Command cmscale measures how the client manager scales, on an embedded
// etcd, and checks the figures against the targets of issue 15:
//
//   - registry: New → every node online with a dialer whose connections
//     are READY at once, at several node counts (time and bytes allocated);
//     16,000 nodes within 1 s and 200 MiB, and 8,000 nodes within 6× the
//     time of 2,000 (linear is 4×);
//   - dial: 1,000 nodes of which every tenth is a black hole (accepts TCP,
//     never speaks), real gRPC servers for the others, default Config:
//     every reachable node online within 1 s, a node added while the
//     black holes are being dialed online within 100 ms, and the black
//     holes unreachable after 3 × DialTimeout (not later);
//   - list: 1,000,000 sessions of one role: session.List and a Watcher's
//     initial sync, each etcd request within RequestTimeout; the sync
//     time and the heap the watcher holds per session.
//
// It prints one Markdown table and exits with status 1 when a check fails.
// The registry figures are the fastest of -runs runs, the machine being
// shared. Its etcd runs in a child process (this program with
// -etcd-child), so that the figures are the client's alone.
//
// Usage: go run ./cmd/cmscale [-run registry|dial|list] [-nodes 1000,2000,4000,8000,16000]
// [-runs 3] [-dial-nodes 1000] [-sessions 1000000] [-cpuprofile f] [-memprofile f]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

const role = "querynode"

func main() {
	run := flag.String("run", ".", "regular expression selecting the measurements: registry, dial, list")
	nodes := flag.String("nodes", "1000,2000,4000,8000,16000", "node counts of the registry measurement")
	runs := flag.Int("runs", 3, "runs of each registry measurement; the fastest is reported")
	dialNodes := flag.Int("dial-nodes", 1000, "nodes of the dial measurement, every tenth a black hole")
	sessions := flag.Int("sessions", 1_000_000, "sessions of the list measurement")
	memprofile := flag.String("memprofile", "", "write allocation profiles of each registry run to this file (.<nodes> and .<nodes>.base, for pprof -diff_base)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	etcdChild := flag.String("etcd-child", "", "internal: serve etcd with its data in this directory")
	flag.Parse()
	if *etcdChild != "" {
		if err := serveEtcd(*etcdChild); err != nil {
			fail(err)
		}
		return
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 4096
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	sel, err := regexp.Compile(*run)
	if err != nil {
		fail(err)
	}
	if *runs < 1 {
		fail(fmt.Errorf("-runs (%d) must be ≥ 1", *runs))
	}
	var sizes []int
	for _, f := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fail(fmt.Errorf("-nodes: %q is not a node count", f))
		}
		sizes = append(sizes, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t, err := measure(ctx, sel, sizes, *runs, *dialNodes, *sessions, *memprofile)
	if err != nil {
		fail(err)
	}
	t.print(os.Stdout)
	if !t.ok() {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func writeMemProfile(path string) error {
	runtime.GC() // the profile is as of the last collection
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cmscale:", err)
	os.Exit(2)
}

// measure runs the selected measurements on one embedded etcd.
func measure(ctx context.Context, sel *regexp.Regexp, sizes []int, runs, dialNodes, sessions int, memprofile string) (*table, error) {
	cl, err := startCluster()
	if err != nil {
		return nil, err
	}
	defer cl.close()
	t := &table{}
	if sel.MatchString("registry") {
		var results []registryResult
		for _, n := range sizes {
			progress("registry: %d nodes, %d runs", n, runs)
			r, err := measureRegistry(ctx, cl, n, runs, memprofile)
			if err != nil {
				return nil, fmt.Errorf("registry, %d nodes: %w", n, err)
			}
			results = append(results, r)
		}
		t.registry(results)
	}
	if sel.MatchString("dial") {
		progress("dial: %d nodes, every tenth a black hole", dialNodes)
		r, err := measureDial(ctx, cl, dialNodes, 10)
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		t.dial(r)
	}
	if sel.MatchString("list") {
		progress("list: %d sessions", sessions)
		r, err := measureList(ctx, cl, sessions)
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		t.list(r)
	}
	return t, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cmscale: "+format+"\n", args...)
}
