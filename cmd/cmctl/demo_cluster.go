package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/session"
)

const (
	coordRole = "rootcoord"
	nodeRole  = "querynode"
	// demoVersion is the version every component registers.
	demoVersion = "2.4.0"
	// etcdReadyTimeout bounds the embedded etcd's start.
	etcdReadyTimeout = 10 * time.Second
	// etcdClientTimeout bounds the dial of each etcd client.
	etcdClientTimeout = 5 * time.Second
	// sessionsGoneTimeout bounds the wait for the watchers to see the
	// sessions of stopped components deleted.
	sessionsGoneTimeout = 2 * time.Second
)

// cluster is everything the demo runs: the embedded etcd, the coordinator
// with its client manager, the query nodes, and the goroutines that print
// what they see. shutdown stops all of it.
type cluster struct {
	cfg      demoConfig
	con      *console
	dir      string
	etcd     *embed.Etcd
	endpoint string
	scfg     session.Config

	cli      *clientv3.Client // the coordinator's, shared by its manager and the session watchers
	mgr      *clientmanager.Manager
	watchers []*session.Watcher
	events   *tracker
	stopSubs context.CancelFunc
	printers sync.WaitGroup

	coord *member
	nodes []*member // every node started, stopped ones included
	next  int       // index of the next node, named by nodeLetter
}

// startCluster starts etcd, the coordinator's client manager and the
// printers of events, the query nodes and the coordinator, and returns once
// the coordinator is Healthy and sees every node online. On error,
// whatever was started is stopped.
func startCluster(ctx context.Context, con *console, cfg demoConfig) (_ *cluster, err error) {
	cl := &cluster{cfg: cfg, con: con, events: newTracker()}
	defer func() {
		if err != nil {
			err = errors.Join(err, cl.shutdown())
		}
	}()
	if err := cl.startEtcd(); err != nil {
		return nil, err
	}
	cl.scfg = session.DefaultConfig()
	cl.scfg.TTL = cfg.TTL
	con.printf("cmctl demo: embedded etcd at %s (data in %s), %d query nodes, lease TTL %s",
		cl.endpoint, cl.dir, cfg.Nodes, cfg.TTL)
	if cl.cli, err = cl.newClient(); err != nil {
		return nil, err
	}
	if err := cl.startManager(); err != nil {
		return nil, err
	}
	con.printf("%9s  %-12s %-8s %s", "TIME", "COMPONENT", "EVENT", "DETAIL")

	cl.coord, err = cl.startMember(coordRole, session.Session{ServerName: coordRole, Exclusive: true, Version: demoVersion}, cl.mgr)
	if err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Nodes; i++ {
		if _, err := cl.addNode(); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.StepTimeout)
	defer cancel()
	if err := cl.coord.runner.WaitForState(wctx, healthy); err != nil {
		return nil, fmt.Errorf("%s not healthy: %w", cl.coord.name, err)
	}
	if _, err := cl.events.wait(wctx, streamSession, cl.coord.runner.Session().ServerID, "add"); err != nil {
		return nil, fmt.Errorf("%s: %w", cl.coord.name, err)
	}
	for _, n := range cl.nodes {
		if _, _, err := cl.waitOnline(wctx, n); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

func (cl *cluster) startEtcd() error {
	dir, err := os.MkdirTemp("", "cmctl-demo-")
	if err != nil {
		return fmt.Errorf("etcd data dir: %w", err)
	}
	cl.dir = dir
	ec := embed.NewConfig()
	ec.Name = "demo"
	ec.Dir = dir
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// Port 0: the member listens on free loopback ports; a one-member
	// cluster never dials its own peer URL.
	cu, pu := url.URL{Scheme: "http", Host: "127.0.0.1:0"}, url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	ec.InitialCluster = ec.Name + "=" + pu.String()
	ec.TickMs, ec.ElectionMs = 50, 500
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	cl.etcd = e
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return fmt.Errorf("etcd: %w", err)
	case <-time.After(etcdReadyTimeout):
		return fmt.Errorf("etcd not ready within %s", etcdReadyTimeout)
	}
	if len(e.Clients) == 0 {
		return errors.New("etcd has no client listener")
	}
	cl.endpoint = e.Clients[0].Addr().String()
	return nil
}

// newClient connects to the embedded etcd.
func (cl *cluster) newClient() (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{cl.endpoint},
		DialTimeout: etcdClientTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return cli, nil
}

// startManager creates the coordinator's client manager and starts the
// printers of its client events and of the session events of both roles.
func (cl *cluster) startManager() error {
	mc := clientmanager.DefaultConfig()
	mc.Session = cl.scfg
	mc.Balancer.Policy = balancer.PolicyRoundRobin
	mc.DialTimeout = 5 * time.Second
	mc.DrainTimeout = 2 * time.Second
	m, err := clientmanager.New(cl.cli, mc, clientmanager.WithLogger(cl.cfg.Logger.Named(coordRole)))
	if err != nil {
		return err
	}
	cl.mgr = m
	ctx, cancel := context.WithCancel(context.Background())
	cl.stopSubs = cancel
	cl.follow(func() { cl.printClients(m.WatchClients(ctx, nodeRole)) })
	for _, role := range []string{coordRole, nodeRole} {
		w, err := session.NewWatcher(cl.cli, cl.scfg, session.DefaultWatchConfig(role))
		if err != nil {
			return err
		}
		cl.watchers = append(cl.watchers, w)
		events := w.Subscribe(ctx)
		cl.follow(func() { cl.printSessions(events) })
	}
	return m.AddDependency(nodeRole)
}

// follow runs f in a goroutine that shutdown waits for.
func (cl *cluster) follow(f func()) {
	cl.printers.Add(1)
	go func() {
		defer cl.printers.Done()
		f()
	}()
}

func (cl *cluster) printClients(events <-chan clientmanager.ClientEvent) {
	for ev := range events {
		at := time.Now()
		s := ev.Client.Session()
		cl.con.event(cl.con.name(s.Address), "client", "%-7s node %d at %s (seen by %s)", ev.Type, s.ServerID, s.Address, coordRole)
		cl.events.set(streamClient, s.ServerID, ev.Type.String(), at)
	}
}

func (cl *cluster) printSessions(events <-chan session.Event) {
	for ev := range events {
		at := time.Now()
		s := ev.Session
		cl.con.event(cl.con.name(s.Address), "session", "%-7s %s-%d lease %s stopping=%t (etcd revision %d)",
			ev.Type, s.ServerName, s.ServerID, leaseString(s.LeaseID), s.Stopping, ev.Revision)
		cl.events.set(streamSession, s.ServerID, ev.Type.String(), at)
	}
}

// addNode starts the next query node.
func (cl *cluster) addNode() (*member, error) {
	name := "qn-" + nodeLetter(cl.next)
	cl.next++
	n, err := cl.startMember(name, session.Session{ServerName: nodeRole, Version: demoVersion}, nil)
	if err != nil {
		return nil, err
	}
	cl.nodes = append(cl.nodes, n)
	return n, nil
}

// waitOnline waits until n is Healthy, the coordinator sees it online and
// its session was printed, and returns its ServerID and when it came
// online.
func (cl *cluster) waitOnline(ctx context.Context, n *member) (int64, time.Time, error) {
	if err := n.runner.WaitForState(ctx, healthy); err != nil {
		return 0, time.Time{}, fmt.Errorf("%s not healthy: %w", n.name, err)
	}
	id := n.runner.Session().ServerID
	at, err := cl.events.wait(ctx, streamClient, id, "online")
	if err == nil {
		_, err = cl.events.wait(ctx, streamSession, id, "add")
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%s: %w", n.name, err)
	}
	return id, at, nil
}

// shutdown stops the query nodes, then the coordinator, closes the
// manager and the printers, then etcd, and removes etcd's data. Safe on a
// partly started cluster.
func (cl *cluster) shutdown() error {
	cl.con.printf("== shutdown: query nodes, then %s, the client manager and etcd", coordRole)
	var errs []error
	var wg sync.WaitGroup
	nodeErrs := make([]error, len(cl.nodes))
	for i, n := range cl.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodeErrs[i] = n.stop()
		}()
	}
	wg.Wait()
	errs = append(errs, nodeErrs...)
	if cl.coord != nil {
		errs = append(errs, cl.coord.stop())
	}
	cl.waitSessionsGone()
	if cl.mgr != nil {
		_ = cl.mgr.Close()
		cl.con.printf("  client manager closed")
	}
	if cl.stopSubs != nil {
		cl.stopSubs()
	}
	for _, w := range cl.watchers {
		_ = w.Close()
	}
	cl.printers.Wait()
	if cl.cli != nil {
		_ = cl.cli.Close()
	}
	if cl.etcd != nil {
		cl.etcd.Close()
		<-cl.etcd.Server.StopNotify()
		cl.con.printf("  etcd closed")
	}
	if cl.dir != "" {
		if err := os.RemoveAll(cl.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove etcd data: %w", err))
		}
	}
	return errors.Join(errs...)
}

// waitSessionsGone waits, for a bounded time, until the deletion of every
// session the watchers printed is printed too, so that the output shows
// each component leave etcd.
func (cl *cluster) waitSessionsGone() {
	ctx, cancel := context.WithTimeout(context.Background(), sessionsGoneTimeout)
	defer cancel()
	for _, m := range slices.Concat(cl.nodes, []*member{cl.coord}) {
		if m == nil {
			continue
		}
		if id := m.runner.Session().ServerID; id != 0 && cl.events.seen(streamSession, id) {
			_, _ = cl.events.wait(ctx, streamSession, id, "del")
		}
	}
}

// nodeLetter names the i-th query node (from 0): a … z, then aa, ab …
// Letters, not numbers, so that names are not mistaken for ServerIDs.
func nodeLetter(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('a' + (i-1)%26)}, b...)
	}
	return string(b)
}
