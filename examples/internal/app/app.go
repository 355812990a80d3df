// Package app is the shared body of the example binaries: one component
// run by a startup.Runner, configured by flags, that prints "listening
// <addr>", then "state <to> from <from>" for the initial state and for
// every state change to stdout, and stops cleanly on SIGTERM or SIGINT (a
// second signal forces the stop).
//
// With -call (the coordinator's default: querynode) it also calls that role
// through the client manager's Invoke every -call-interval while it is
// Healthy, and logs which node answered, or why the call failed: what the
// library is for.
//
// With -http-addr it serves the debug handler (package debughttp) there
// and prints "http <addr>": /healthz, /readyz, /metrics (the manager's and
// the session's metrics, Go and process collectors) and the status page.
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
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/examples/internal/echo"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

// Defaults are what differs between the example binaries.
type Defaults struct {
	Role      string // default -role
	Exclusive bool   // one active process per role
	// WaitDepends is the default of -wait-depends: whether the -depends
	// roles are waited for at startup (required) or only watched
	// (Optional). Two components that wait for each other both wait for
	// the whole -dependency-timeout, so one side of each pair must not:
	// a coordinator does not wait for its worker nodes, which wait for it.
	WaitDepends bool
	Call        string // default -call: the role called every -call-interval
}

// The defaults of the example binaries.
var (
	// CoordinatorDefaults: one active rootcoord, the others stand by; it
	// calls querynode and does not wait for it at startup.
	CoordinatorDefaults = Defaults{Role: "rootcoord", Exclusive: true, Call: "querynode"}
	// NodeDefaults: a querynode, waiting at startup for what it -depends on.
	NodeDefaults = Defaults{Role: "querynode", WaitDepends: true}
)

type flags struct {
	etcd, rootPath, role, listen, version, depends, policy, call string
	waitDepends                                                  bool
	ttl, depTimeout, lameDuck, stopTimeout, callInterval         time.Duration
	abnormalAfter                                                time.Duration
	httpAddr                                                     string
	allowCallers                                                 string
	sec                                                          security.Flags
}

func parse(name string, args []string, d Defaults, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sc, sd := session.DefaultConfig(), startup.DefaultConfig()
	fs.StringVar(&f.etcd, FlagEtcdEndpoints, "127.0.0.1:2379", "etcd endpoints, host:port, comma-separated")
	fs.StringVar(&f.etcd, "etcd", "127.0.0.1:2379", "short for -"+FlagEtcdEndpoints)
	fs.StringVar(&f.rootPath, FlagRootPath, sc.RootPath, "etcd root path of the cluster's metadata")
	fs.StringVar(&f.rootPath, "root", sc.RootPath, "short for -"+FlagRootPath)
	fs.StringVar(&f.role, "role", d.Role, "role (session ServerName)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "gRPC listen address")
	fs.DurationVar(&f.ttl, FlagTTL, sc.TTL, "session lease TTL (whole seconds)")
	fs.StringVar(&f.version, "version", "2.4.0", "version registered in the session")
	fs.StringVar(&f.depends, "depends", "", "dependency roles, comma-separated")
	fs.BoolVar(&f.waitDepends, "wait-depends", d.WaitDepends,
		"wait at startup (bounded by -dependency-timeout) until every -depends role is online; "+
			"false makes them optional: watched, never waited for")
	fs.DurationVar(&f.depTimeout, "dependency-timeout", sd.DependencyTimeout, "bound of the wait for dependencies")
	f.policy = startup.Continue.String()
	fs.Var(choice{&f.policy, Policies}, "dependency-policy",
		"when a required dependency is not online in time: "+strings.Join(Policies, " or "))
	fs.DurationVar(&f.lameDuck, "lame-duck", sd.LameDuck, "how long a stopping process keeps serving once marked stopping")
	fs.DurationVar(&f.stopTimeout, "stop-timeout", sd.StopTimeout, "bound of the graceful stop")
	fs.DurationVar(&f.abnormalAfter, "abnormal-after", sd.AbnormalAfter,
		"how long the session may stay unregistered (etcd unreachable, lease lost) before the process goes Abnormal")
	fs.StringVar(&f.call, "call", d.Call, "role to call (Echo) through the client manager while Healthy; empty: none")
	fs.DurationVar(&f.callInterval, "call-interval", time.Second, "interval between the calls of -call")
	fs.StringVar(&f.httpAddr, FlagHTTPAddr, "",
		"serve /healthz, /readyz, /metrics and the status page /debug/clientmanager/ui on this address; empty: none")
	f.sec.Register(fs)
	fs.StringVar(&f.allowCallers, "tls-allow-callers", "",
		"roles allowed to call this process, comma-separated (needs -tls-*); empty: any certificate of the CA")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.call != "" && f.callInterval <= 0 {
		err := fmt.Errorf("-call-interval (%s) must be > 0", f.callInterval)
		fmt.Fprintln(stderr, err)
		return f, err
	}
	return f, nil
}

// dependencies are the -depends roles, required when -wait-depends, and
// the -call role, optional unless listed in -depends.
func (f flags) dependencies() []startup.Dependency {
	var deps []startup.Dependency
	seen := make(map[string]bool)
	for _, role := range splitList(f.depends) {
		if !seen[role] {
			seen[role] = true
			deps = append(deps, startup.Dependency{Role: role, Optional: !f.waitDepends})
		}
	}
	if f.call != "" && !seen[f.call] {
		deps = append(deps, startup.Dependency{Role: f.call, Optional: true})
	}
	return deps
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	force, forceCancel := context.WithCancel(context.Background())
	defer forceCancel()
	stopSignals := handleSignals(cancel, forceCancel)
	err = run(ctx, force, f, d, log, stdout)
	stopSignals()
	if err != nil {
		log.Error("exiting on error", zap.Error(err))
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}

// run runs the component until ctx ends, then stops it gracefully; the
// end of force forces the stop.
func run(ctx, force context.Context, f flags, d Defaults, log *zap.Logger, stdout io.Writer) error {
	etcdLog := log.Named("etcd").WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))
	ec := f.sec.Etcd(splitList(f.etcd))
	cc, err := ec.ClientConfig(etcdLog, session.EtcdDialOptions()...)
	if err != nil {
		return err
	}
	cc.DialKeepAliveTime, cc.DialKeepAliveTimeout = 2*time.Second, 2*time.Second
	cli, err := clientv3.New(cc)
	if err != nil {
		return fmt.Errorf("%s: %w", ec, err) // names etcd, never the password
	}
	defer func() { _ = cli.Close() }()
	tl, err := f.sec.TLS()
	if err != nil {
		return err
	}

	cfg := startup.DefaultConfig()
	cfg.Session = session.Session{ServerName: f.role, Exclusive: d.Exclusive, Version: f.version}
	cfg.SessionConfig.RootPath = f.rootPath
	cfg.SessionConfig.TTL = f.ttl
	cfg.DependencyTimeout = f.depTimeout
	cfg.LameDuck = f.lameDuck
	cfg.StopTimeout = f.stopTimeout
	cfg.AbnormalAfter = f.abnormalAfter
	if f.policy == startup.Strict.String() {
		cfg.DependencyPolicy = startup.Strict
	}
	cfg.Dependencies = f.dependencies()
	cfg.TLS, cfg.AllowedCallerRoles = tl, splitList(f.allowCallers)
	// Credentials etcd rejects fail at once, with the cause; an etcd not
	// reachable yet is waited for by the registration, as before.
	if err := session.CheckEtcdAccess(ctx, cli, cfg.SessionConfig); session.IsEtcdAuthError(err) {
		return err
	}
	reg, sm, err := newRegistry()
	if err != nil {
		return err
	}
	var mgr *clientmanager.Manager
	if len(cfg.Dependencies) > 0 {
		mc := clientmanager.DefaultConfig()
		mc.SessionConfig = cfg.SessionConfig
		mc.TLS = tl
		if mgr, err = clientmanager.New(cli, mc, clientmanager.WithLogger(log),
			clientmanager.WithRegisterer(reg), clientmanager.WithSessionMetrics(sm)); err != nil {
			return err
		}
		defer func() { _ = mgr.Close() }()
	}

	stm, err := startup.NewMetrics(reg)
	if err != nil {
		return err
	}
	runner, err := startup.New(cli, mgr, cfg, &component{log: log}, startup.WithLogger(log),
		startup.WithSessionOptions(session.WithMetrics(sm)), startup.WithMetrics(stm))
	if err != nil {
		return err
	}
	defer func() { _ = runner.Close() }()
	if f.httpAddr != "" {
		stopHTTP, err := serveDebug(f.httpAddr, mgr, runner, reg, f.role, stdout, log)
		if err != nil {
			return err
		}
		defer stopHTTP() // after Run: /readyz answers through the stop
	}
	srv := grpc.NewServer(runner.ServerOptions()...)
	echo.Register(srv, &echo.Server{OnSlow: func() { fmt.Fprintln(stdout, "slow started") }})

	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "listening", lis.Addr().String())

	printed := printStates(runner, stdout)
	stopForce := context.AfterFunc(force, runner.ForceStop)
	defer stopForce()
	var calls sync.WaitGroup
	callCtx, stopCalls := context.WithCancel(ctx) // the calls end when the stop begins
	defer stopCalls()
	if f.call != "" {
		c := &caller{mgr: mgr, runner: runner, role: f.call, interval: f.callInterval,
			from: fmt.Sprintf("%s at %s", f.role, lis.Addr()), log: log}
		calls.Go(func() { c.loop(callCtx) })
	}
	err = runner.Run(ctx, srv, lis)
	stopCalls()
	calls.Wait()
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
