package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
)

// demoConfig is what a demo run does.
type demoConfig struct {
	// Nodes is the number of query nodes started with the coordinator.
	// Must be ≥ 1.
	Nodes int
	// Duration is how long the call loop runs after the scenario; zero
	// runs the scenario once and stops. Must be ≥ 0.
	Duration time.Duration
	// CallInterval paces the call loop. Must be > 0.
	CallInterval time.Duration
	// Calls is the number of calls of the scenario's first step. Must be
	// ≥ 1.
	Calls int
	// TTL is the lease TTL of every session, in whole seconds. Must be
	// ≥ 1 s.
	TTL time.Duration
	// StepTimeout bounds each wait of the scenario. Must be > 0.
	StepTimeout time.Duration
	// Logger receives the components' structured logs; nil discards them.
	Logger *zap.Logger
}

func defaultDemoConfig() demoConfig {
	return demoConfig{
		Nodes:        3,
		CallInterval: time.Second,
		Calls:        10,
		TTL:          2 * time.Second,
		StepTimeout:  10 * time.Second,
	}
}

func (c demoConfig) validate() error {
	switch {
	case c.Nodes < 1:
		return fmt.Errorf("-nodes (%d) must be ≥ 1", c.Nodes)
	case c.Duration < 0:
		return fmt.Errorf("-duration (%s) must be ≥ 0", c.Duration)
	case c.CallInterval <= 0:
		return fmt.Errorf("call interval (%s) must be > 0", c.CallInterval)
	case c.Calls < 1:
		return fmt.Errorf("calls (%d) must be ≥ 1", c.Calls)
	case c.TTL < time.Second || c.TTL%time.Second != 0:
		return fmt.Errorf("-ttl (%s) must be a whole number of seconds ≥ 1s", c.TTL)
	case c.StepTimeout <= 0:
		return fmt.Errorf("step timeout (%s) must be > 0", c.StepTimeout)
	}
	return nil
}

// cmdDemo parses the demo's flags and runs it.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultDemoConfig()
	var verbose bool
	fs := newFlagSet("demo", "[-nodes 3] [-duration 0] [-ttl 2s] [-v]", stderr)
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "query nodes started with the coordinator")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration,
		"after the scenario, call a node every second for this long (0: stop after the scenario)")
	fs.DurationVar(&cfg.TTL, "ttl", cfg.TTL, "session lease TTL (whole seconds)")
	fs.BoolVar(&verbose, "v", false, "write the components' logs to stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if verbose {
		zc := zap.NewDevelopmentConfig()
		zc.OutputPaths, zc.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
		log, err := zc.Build()
		if err != nil {
			return fmt.Errorf("logger: %w", err)
		}
		defer func() { _ = log.Sync() }()
		cfg.Logger = log
	}
	return runDemo(ctx, stdout, cfg)
}

// runDemo runs a coordinator and cfg.Nodes query nodes on an embedded etcd,
// prints what happens and plays the scenario: calls spread over the nodes,
// a node stopped gracefully, a new node joining, the coordinator's view.
// With cfg.Duration > 0 it then calls a node every cfg.CallInterval until
// the duration elapses. It stops everything gracefully before it returns:
// nil after a clean run, or after ctx ended (an interruption is not a
// failure).
func runDemo(ctx context.Context, w io.Writer, cfg demoConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	con := newConsole(w)
	cl, err := startCluster(ctx, con, cfg)
	if err == nil {
		err = func() (err error) {
			defer func() { err = errors.Join(err, cl.shutdown()) }()
			d := &demo{cl: cl, con: con, cfg: cfg}
			return d.play(ctx)
		}()
	}
	if err != nil && ctx.Err() != nil {
		// Interrupted: everything was stopped gracefully all the same.
		con.printf("== interrupted: %v", err)
		return nil
	}
	return err
}
