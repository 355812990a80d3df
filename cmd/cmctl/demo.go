package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/coordkit/clientmanager/examples"
	"github.com/coordkit/clientmanager/session"
)

// demoConfig is what a demo run does.
type demoConfig struct {
	// Nodes is the number of query nodes. Must be ≥ 1, and ≥ 2 with the
	// fault timeline (a node must serve while another is down). At most
	// maxDemoNodes.
	Nodes int
	// Faults plays the fault timeline; false only starts the cluster and
	// runs the load for Duration.
	Faults bool
	// Speed divides the pauses of the timeline (how long each step lets
	// the load run before and after its fault). Waits for the cluster to
	// react are measured, not paced; the etcd outage always lasts
	// 2 × TTL. Must be > 0.
	Speed float64
	// Duration is how long the load runs after the timeline, or instead
	// of it without Faults. Must be ≥ 0.
	Duration time.Duration
	// TTL is the lease TTL of every session, in whole seconds. Must be
	// ≥ 1 s.
	TTL time.Duration
	// Rate is the calls per second of the load to the query nodes; the
	// coordinators get a tenth of it (at least 1/s). Must be ≥ 1.
	Rate int
	// CallDeadline bounds each call of the load, retries included.
	// Must be > 0.
	CallDeadline time.Duration
	// EtcdEndpoints is a real etcd to run on instead of the embedded one;
	// then the etcd outage step is skipped.
	EtcdEndpoints []string
	// RootPath is where the sessions live. Default by-dev/meta on the
	// embedded etcd, and a fresh cmctl-demo/<random> on a real one,
	// removed at the end.
	RootPath string
	// HTTPAddr serves the demo's status page (debughttp) when set; each
	// component then serves its own on a free port.
	HTTPAddr string
	// StepTimeout bounds each wait for the cluster to react. Must be > 0.
	StepTimeout time.Duration
	// Logs, when not nil, receives the components' logs.
	Logs io.Writer
	// Exe is the binary the components run from (this one, re-executed
	// with childEnv); empty: os.Executable.
	Exe string
	// TLS makes a CA and a certificate per role in a temporary directory
	// (removed at the end) and runs every component and the demo's manager
	// with mutual TLS (see package security).
	TLS bool
	// Etcd are the credentials of the real etcd of EtcdEndpoints; they
	// need it.
	Etcd demoEtcdFlags
}

// maxDemoNodes bounds -nodes: every node is a process.
const maxDemoNodes = 20

func defaultDemoConfig() demoConfig {
	return demoConfig{
		Nodes:        3,
		Faults:       true,
		Speed:        1,
		TTL:          3 * time.Second,
		Rate:         100,
		CallDeadline: time.Second,
		StepTimeout:  15 * time.Second,
	}
}

func (c demoConfig) validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > maxDemoNodes:
		return fmt.Errorf("-nodes (%d) must be in [1, %d]", c.Nodes, maxDemoNodes)
	case c.Faults && c.Nodes < 2:
		return fmt.Errorf("-nodes (%d) must be ≥ 2 for the fault timeline (or use -no-faults)", c.Nodes)
	case c.Faults && c.TTL < 2*time.Second:
		return fmt.Errorf("-ttl (%s) must be ≥ 2s for the fault timeline: a node is frozen for TTL/2", c.TTL)
	case !(c.Speed > 0):
		return fmt.Errorf("-speed (%g) must be > 0", c.Speed)
	case c.Duration < 0:
		return fmt.Errorf("-duration (%s) must be ≥ 0", c.Duration)
	case c.TTL < time.Second || c.TTL%time.Second != 0:
		return fmt.Errorf("-ttl (%s) must be a whole number of seconds ≥ 1s", c.TTL)
	case c.Rate < 1:
		return fmt.Errorf("-rate (%d) must be ≥ 1", c.Rate)
	case c.CallDeadline <= 0:
		return fmt.Errorf("call deadline (%s) must be > 0", c.CallDeadline)
	case c.StepTimeout <= 0:
		return fmt.Errorf("step timeout (%s) must be > 0", c.StepTimeout)
	}
	if c.Etcd.set() && len(c.EtcdEndpoints) == 0 {
		return fmt.Errorf("the -etcd-* credentials need -%s: the embedded etcd has neither TLS nor authentication", examples.FlagEtcdEndpoints)
	}
	if c.RootPath != "" {
		sc := session.DefaultConfig()
		sc.RootPath = c.RootPath
		if err := sc.Validate(); err != nil {
			return fmt.Errorf("-%s %q: %w", examples.FlagRootPath, c.RootPath, err)
		}
	}
	return nil
}

// pace returns d divided by the speed.
func (c demoConfig) pace(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.Speed)
}

const demoSynopsis = "[-nodes 3] [-speed 1] [-no-faults] [-duration 0] [-ttl 3s] [-http-addr host:port] [-etcd-endpoints host:port,... [-etcd-ca ... -etcd-user ...]] [-tls] [-v]"

// cmdDemo parses the demo's flags and runs it.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultDemoConfig()
	var noFaults, verbose bool
	var endpoints string
	fs := newFlagSet("demo", demoSynopsis, stderr)
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "query nodes (each a process)")
	fs.Float64Var(&cfg.Speed, "speed", cfg.Speed, "pace of the timeline: 2 halves its pauses (the etcd outage always lasts 2 × -ttl)")
	fs.BoolVar(&noFaults, "no-faults", false, "start the cluster and run the load for -duration (default 10s), without the fault timeline")
	fs.DurationVar(&cfg.Duration, "duration", 0, "run the load this long after the timeline (with -no-faults: instead of it)")
	fs.DurationVar(&cfg.TTL, examples.FlagTTL, cfg.TTL, "session lease TTL (whole seconds)")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "calls per second to the query nodes (the coordinators get a tenth)")
	fs.StringVar(&cfg.HTTPAddr, examples.FlagHTTPAddr, "",
		"serve the status page (/debug/clientmanager/ui), /metrics, /healthz and /readyz here; every component serves its own")
	registerEtcdFlags(fs, &endpoints, "a real etcd to run on instead of the embedded one, host:port, comma-separated")
	fs.StringVar(&cfg.RootPath, examples.FlagRootPath, "", "etcd root path (default by-dev/meta embedded, a fresh cmctl-demo/<random> on a real etcd)")
	fs.StringVar(&cfg.RootPath, "root", "", "short for -"+examples.FlagRootPath)
	cfg.Etcd.register(fs)
	fs.BoolVar(&cfg.TLS, "tls", false,
		"mutual TLS: make a CA and a certificate per role in a temporary directory, and run every process with them")
	fs.BoolVar(&verbose, "v", false, "write the components' logs to stderr")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg.Faults = !noFaults
	cfg.EtcdEndpoints = splitList(endpoints)
	if noFaults && !flagSet(fs, "duration") {
		cfg.Duration = cfg.pace(10 * time.Second)
	}
	if verbose {
		cfg.Logs = stderr
	}
	return runDemo(ctx, stdout, cfg)
}

// flagSet reports whether the flag name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// runDemo starts the cluster, plays the timeline, runs the load for
// cfg.Duration and stops everything. An interruption (ctx's end, or
// stdout closed) is a clean stop: it returns nil.
func runDemo(ctx context.Context, w io.Writer, cfg demoConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("the demo runs its components from its own binary: %w", err)
		}
		cfg.Exe = exe
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	con := newConsole(w, cancel) // stdout closed (SIGPIPE): stop as on Ctrl-C
	con.tty = isTerminal(w)
	cl, err := startCluster(ctx, con, cfg)
	if err == nil {
		err = func() (err error) {
			defer func() { err = errors.Join(err, cl.shutdown()) }()
			d := &demo{cl: cl, con: con, cfg: cfg}
			return d.play(ctx)
		}()
	}
	if err != nil && ctx.Err() != nil {
		con.printf("== interrupted: %v", err)
		return nil
	}
	return err
}
