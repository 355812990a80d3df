// Package app is the shared body of the example binaries: one component
// run by a startup.Runner, configured by flags, that prints "listening
// <addr>", then "state <to> from <from>" for the initial state and for
// every state change to stdout, and stops cleanly on SIGTERM or SIGINT (a
// second signal forces the stop).
package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/examples/internal/echo"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

// Defaults are what differs between the example binaries.
type Defaults struct {
	Role      string // default -role
	Exclusive bool   // one active process per role
}

type flags struct {
	etcd, rootPath, role, listen, version, depends, policy string
	ttl, depTimeout, stopTimeout                           time.Duration
}

func parse(name string, args []string, d Defaults, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sc, sd := session.DefaultConfig(), startup.DefaultConfig()
	fs.StringVar(&f.etcd, "etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	fs.StringVar(&f.rootPath, "root-path", sc.RootPath, "etcd root path of the cluster's metadata")
	fs.StringVar(&f.role, "role", d.Role, "role (session ServerName)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "gRPC listen address")
	fs.DurationVar(&f.ttl, "ttl", sc.TTL, "session lease TTL (whole seconds)")
	fs.StringVar(&f.version, "version", "2.4.0", "version registered in the session")
	fs.StringVar(&f.depends, "depends", "", "required dependency roles, comma-separated")
	fs.DurationVar(&f.depTimeout, "dependency-timeout", sd.DependencyTimeout, "bound of the wait for dependencies")
	fs.StringVar(&f.policy, "dependency-policy", "continue", "continue or strict, when a dependency is not online in time")
	fs.DurationVar(&f.stopTimeout, "stop-timeout", sd.StopTimeout, "bound of the graceful stop")
	err := fs.Parse(args)
	return f, err
}

// Main runs the binary with args (without the program name) and returns
// its exit code: 0 after a clean stop, 1 on failure, 2 on bad flags.
func Main(name string, args []string, stdout, stderr io.Writer, d Defaults) int {
	f, err := parse(name, args, d, stderr)
	if err != nil {
		return 2
	}
	zc := zap.NewProductionConfig()
	zc.OutputPaths, zc.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	log, err := zc.Build()
	if err != nil {
		fmt.Fprintln(stderr, "logger:", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("process", name))
	if err := run(f, d, log, stdout); err != nil {
		log.Error("exiting on error", zap.Error(err))
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}

func run(f flags, d Defaults, log *zap.Logger, stdout io.Writer) error {
	etcdLog := log.Named("etcd").WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            splitList(f.etcd),
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               etcdLog,
	})
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()

	cfg := startup.DefaultConfig()
	cfg.Session = session.Session{ServerName: f.role, Exclusive: d.Exclusive, Version: f.version}
	cfg.SessionConfig.RootPath = f.rootPath
	cfg.SessionConfig.TTL = f.ttl
	cfg.DependencyTimeout = f.depTimeout
	cfg.StopTimeout = f.stopTimeout
	if f.policy == "strict" {
		cfg.DependencyPolicy = startup.Strict
	}
	for _, role := range splitList(f.depends) {
		cfg.Dependencies = append(cfg.Dependencies, startup.Dependency{Role: role})
	}
	var mgr *clientmanager.Manager
	if len(cfg.Dependencies) > 0 {
		mc := clientmanager.DefaultConfig()
		mc.Session = cfg.SessionConfig
		if mgr, err = clientmanager.New(cli, mc, clientmanager.WithLogger(log)); err != nil {
			return err
		}
		defer func() { _ = mgr.Close() }()
	}

	runner, err := startup.New(cli, mgr, cfg, &component{log: log}, startup.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() { _ = runner.Close() }()
	srv := grpc.NewServer(runner.ServerOptions()...)
	echo.Register(srv, &echo.Server{OnSlow: func() { fmt.Fprintln(stdout, "slow started") }})

	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "listening", lis.Addr().String())

	printed := printStates(runner, stdout)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopSignals := handleSignals(cancel, runner.ForceStop)
	err = runner.Run(ctx, srv, lis)
	stopSignals()
	if runner.State() == startup.StateStopped {
		<-printed // the subscription ends after printing Stopped
	}
	return err
}

// printStates prints every transition; the returned channel closes when
// the subscription ended.
func printStates(r *startup.Runner, stdout io.Writer) <-chan struct{} {
	done := make(chan struct{})
	trs := r.Subscribe(context.Background()) // ends after Stopped or on Close
	go func() {
		defer close(done)
		for tr := range trs {
			fmt.Fprintf(stdout, "state %s from %s\n", tr.To, tr.From)
		}
	}()
	return done
}

// handleSignals cancels on the first SIGTERM or SIGINT and forces on the
// second. The returned func stops listening and waits for the goroutine.
func handleSignals(cancel func(), force func()) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-sigs:
			cancel()
		case <-quit:
			return
		}
		select {
		case <-sigs:
			force()
		case <-quit:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(quit)
		<-done
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// component is the examples' trivial component: it only logs.
type component struct{ log *zap.Logger }

func (c *component) Init(context.Context) error {
	c.log.Info("component initialised")
	return nil
}

func (c *component) Start(context.Context) error {
	c.log.Info("component started")
	return nil
}

func (c *component) Stop(context.Context) error {
	c.log.Info("component stopped")
	return nil
}

// Activate is called when an exclusive role becomes active.
func (c *component) Activate(context.Context) error {
	c.log.Info("component active")
	return nil
}
