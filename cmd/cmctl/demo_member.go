package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

const (
	healthy = startup.StateHealthy
	// memberStopTimeout bounds a component's graceful stop.
	memberStopTimeout = 5 * time.Second
	// printedTimeout bounds the wait for a stopped component's last
	// transition to be printed.
	printedTimeout = 5 * time.Second
)

// member is one component of the demo: a startup.Runner with its own etcd
// client, gRPC server and listener, run in its own goroutine.
type member struct {
	name    string
	cli     *clientv3.Client
	runner  *startup.Runner
	cancel  context.CancelFunc // ends Run's context: a graceful stop
	done    chan struct{}      // closed when Run returned
	err     error              // Run's result, set before done is closed
	printed chan struct{}      // closed when the transitions printer ended
	stopped bool
}

// startMember starts a component that registers s; mgr is its client
// manager, with query nodes as its dependency, or nil.
func (cl *cluster) startMember(name string, s session.Session, mgr *clientmanager.Manager) (m *member, err error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = lis.Close()
		}
	}()
	cli, err := cl.newClient()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sc := startup.DefaultConfig()
	sc.Session = s
	sc.SessionConfig = cl.scfg
	sc.StopTimeout = memberStopTimeout
	sc.DependencyTimeout = cl.cfg.StepTimeout
	if mgr != nil {
		sc.Dependencies = []startup.Dependency{{Role: nodeRole}}
	}
	r, err := startup.New(cli, mgr, sc, demoComponent{}, startup.WithLogger(cl.cfg.Logger.Named(name)))
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	opts := append(r.ServerOptions(), grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
		MinTime: 5 * time.Second, PermitWithoutStream: true, // the client manager pings every 10 s
	}))
	srv := grpc.NewServer(opts...)
	cl.con.setName(lis.Addr().String(), name)

	m = &member{name: name, cli: cli, runner: r, done: make(chan struct{}), printed: make(chan struct{})}
	transitions := r.Subscribe(context.Background()) // ends after Stopped, or on Close
	go func() {
		defer close(m.printed)
		for tr := range transitions {
			if tr.From == tr.To {
				cl.con.event(name, "state", "%s  (listening on %s)", tr.To, lis.Addr())
				continue
			}
			cl.con.event(name, "state", "%s → %s", tr.From, tr.To)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		m.err = r.Run(ctx, srv, lis)
	}()
	return m, nil
}

// stop stops the component gracefully and waits until Run has returned
// and its last transition is printed. It returns Run's error. Idempotent.
func (m *member) stop() error {
	if m.stopped {
		return nil
	}
	m.stopped = true
	m.cancel()
	<-m.done
	select {
	case <-m.printed:
	case <-time.After(printedTimeout):
	}
	_ = m.runner.Close() // ends the subscription if it is still open
	<-m.printed
	_ = m.cli.Close()
	if m.err != nil {
		return fmt.Errorf("%s: %w", m.name, m.err)
	}
	return nil
}

// demoComponent is the demo's component: it has nothing to prepare; the
// Runner serves the health service that the calls use.
type demoComponent struct{}

func (demoComponent) Init(context.Context) error  { return nil }
func (demoComponent) Start(context.Context) error { return nil }
func (demoComponent) Stop(context.Context) error  { return nil }

var _ startup.Component = demoComponent{}

// errNoNode is returned when the scenario has no node to act on.
var errNoNode = errors.New("no query node")
