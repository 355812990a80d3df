package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/debughttp"
	"github.com/coordkit/clientmanager/examples"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/session"
)

const (
	coordRole = "rootcoord"
	nodeRole  = "querynode"
	// childLameDuck is the lame duck of every component: how long a
	// stopping one keeps serving once it is marked Stopping in etcd.
	childLameDuck = 500 * time.Millisecond
	// breakDuration is the first break of the demo's circuit breakers,
	// shorter than the library's default (5 s) to fit the demo's pace.
	breakDuration = 500 * time.Millisecond
)

// cluster is what the demo runs: etcd, the components (child processes),
// and this process's own client manager with its load and status page.
type cluster struct {
	cfg  demoConfig
	con  *console
	etcd *demoEtcd
	root string
	// ownRoot: the demo made root up on a real etcd, and removes its keys
	// at the end.
	ownRoot bool
	cli     *clientv3.Client
	sec     *demoSecurity // -tls certificates, -etcd-* credentials
	mgr     *clientmanager.Manager
	reg     *prometheus.Registry
	load    *load

	httpStop func()
	httpURL  string

	idNames map[int64]string // the name of every node seen, by ServerID

	coords []*proc // the coordinators now running
	nodes  []*proc // the query node of each slot, qn-a, qn-b, …
	nextC  int     // the number of the next coordinator
	all    []*proc // every child started
}

// startCluster starts etcd, the demo's client manager, two coordinators
// (the second a standby), the query nodes, the status page and the load,
// and prints what runs where. On error whatever was started is stopped.
func startCluster(ctx context.Context, con *console, cfg demoConfig) (_ *cluster, err error) {
	cl := &cluster{cfg: cfg, con: con, idNames: make(map[int64]string)}
	defer func() {
		if err != nil {
			err = errors.Join(err, cl.shutdown())
		}
	}()
	start := time.Now()
	if cl.etcd, err = startEtcd(cfg.EtcdEndpoints); err != nil {
		return nil, err
	}
	cl.root = cfg.RootPath
	switch {
	case cl.root != "":
	case cl.etcd.external:
		cl.root, cl.ownRoot = "cmctl-demo/"+randomHex(4), true
	default:
		cl.root = session.DefaultConfig().RootPath
	}
	if cl.etcd.external {
		con.printf("cmctl demo: etcd at %s (external), sessions under %s/, lease TTL %s", strings.Join(cl.etcd.endpoints, ","), cl.root, cfg.TTL)
	} else {
		con.printf("cmctl demo: embedded etcd at %s (data in %s), lease TTL %s", cl.etcd.endpoints[0], cl.etcd.dir, cfg.TTL)
	}
	if cl.sec, err = newDemoSecurity(cfg, cl.etcd.endpoints); err != nil {
		return nil, err
	}
	con.printf("  security: %s", cl.sec.describe())
	if cl.cli, err = dialEtcd(ctx, cl.sec.etcd, cfg.StepTimeout); err != nil {
		return nil, err
	}
	if err := cl.startManager(); err != nil {
		return nil, err
	}

	con.printf("  components: the example binaries' code (examples/coordinator, examples/node), each a child process of this binary")
	for range 2 {
		if _, err := cl.startCoordinator(ctx); err != nil {
			return nil, err
		}
	}
	if err := cl.startNodes(ctx, nil); err != nil {
		return nil, err
	}
	if err := cl.waitCoordinatorOnline(ctx, time.Time{}); err != nil {
		return nil, err
	}
	if cfg.HTTPAddr != "" {
		if err := cl.serveHTTP(); err != nil {
			return nil, err
		}
	}
	cl.printProcesses()
	con.printf("  ready in %s", time.Since(start).Round(time.Millisecond))

	cl.load = newLoad(cl.mgr, cfg.CallDeadline)
	cl.load.start(map[string]int{nodeRole: cfg.Rate, coordRole: max(1, cfg.Rate/10)})
	con.printf("  load: %d calls/s to %s and %d/s to %s from this process's client manager (Echo through Invoke, Idempotent, %s deadline)",
		cfg.Rate, nodeRole, max(1, cfg.Rate/10), coordRole, cfg.CallDeadline)
	if cl.httpURL != "" {
		con.printf("  status page: %s/debug/clientmanager/ui", cl.httpURL)
	}
	return cl, nil
}

// dialEtcd connects to etcd with ec's TLS and credentials and checks,
// within wait, that it answers.
func dialEtcd(ctx context.Context, ec security.EtcdConfig, wait time.Duration) (*clientv3.Client, error) {
	ec.DialTimeout = wait
	cc, err := ec.ClientConfig(zap.NewNop(), session.EtcdDialOptions()...)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ec, err) // names etcd and the user, never the password
	}
	if err := checkEtcd(ctx, cli, ec.Endpoints, wait); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return cli, nil
}

// startManager creates the demo's client manager: it depends on both
// roles, as a proxy would.
func (cl *cluster) startManager() error {
	cl.reg = prometheus.NewRegistry()
	cl.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mc := clientmanager.DefaultConfig()
	mc.SessionConfig.RootPath = cl.root
	mc.SessionConfig.TTL = cl.cfg.TTL
	mc.DialTimeout = 5 * time.Second
	mc.Breaker.BreakDuration = breakDuration
	mc.Breaker.MaxBreakDuration = 8 * breakDuration
	// Round robin gives a frozen node its share of the calls until its
	// breaker opens; power of two choices (the default) would mostly steer
	// around it by its calls in flight, and the breaker would open late.
	mc.Balancer.Policy = balancer.PolicyRoundRobin
	mc.TLS = cl.sec.mgrTLS // nil without -tls
	m, err := clientmanager.New(cl.cli, mc, clientmanager.WithRegisterer(cl.reg))
	if err != nil {
		return err
	}
	cl.mgr = m
	for _, role := range []string{nodeRole, coordRole} {
		if err := m.AddDependency(role); err != nil {
			return err
		}
	}
	return nil
}

// childArgs are the flags every component of role gets.
func (cl *cluster) childArgs(role string) []string {
	args := []string{
		"-" + examples.FlagEtcdEndpoints, strings.Join(cl.etcd.endpoints, ","),
		"-" + examples.FlagRootPath, cl.root,
		"-" + examples.FlagTTL, cl.cfg.TTL.String(),
		"-lame-duck", childLameDuck.String(),
		"-stop-timeout", "5s",
		"-dependency-timeout", cl.cfg.StepTimeout.String(),
	}
	if cl.cfg.HTTPAddr != "" {
		args = append(args, "-"+examples.FlagHTTPAddr, "127.0.0.1:0")
	}
	return append(args, cl.sec.childArgs(role)...)
}

func (cl *cluster) start(ctx context.Context, name, kind string, args []string) (*proc, error) {
	p, err := startProc(ctx, cl.cfg.Exe, name, kind, args, cl.cfg.Logs)
	if err != nil {
		return nil, err
	}
	cl.all = append(cl.all, p)
	cl.con.setName(p.address(), name)
	return p, nil
}

// startCoordinator starts a coordinator and waits until it is Healthy
// (the first) or StandBy (the others).
func (cl *cluster) startCoordinator(ctx context.Context) (*proc, error) {
	cl.nextC++
	name := fmt.Sprintf("%s-%d", coordRole, cl.nextC)
	args := append(cl.childArgs(coordRole), "-role", coordRole, "-call", nodeRole)
	start := time.Now()
	p, err := cl.start(ctx, name, kindCoordinator, args)
	if err != nil {
		return nil, err
	}
	cl.coords = append(cl.coords, p)
	want := "StandBy"
	if cl.active() == nil {
		want = "Healthy"
	}
	wctx, cancel := context.WithTimeout(ctx, cl.cfg.StepTimeout)
	defer cancel()
	if _, err := p.waitState(wctx, want, start); err != nil {
		return nil, fmt.Errorf("%w%s", err, p.lastWords())
	}
	return p, nil
}

// active returns the coordinator that is Healthy, or nil.
func (cl *cluster) active() *proc {
	for _, p := range cl.coords {
		if p.running() && p.state() == "Healthy" {
			return p
		}
	}
	return nil
}

// standby returns a running coordinator that is not active, or nil.
func (cl *cluster) standby() *proc {
	for _, p := range cl.coords {
		if p.running() && p.state() == "StandBy" {
			return p
		}
	}
	return nil
}

// startNodes starts a query node in every slot (listening on listen[i]
// when given) in parallel, and waits until the demo's manager sees each
// online.
func (cl *cluster) startNodes(ctx context.Context, listen []string) error {
	if cl.nodes == nil {
		cl.nodes = make([]*proc, cl.cfg.Nodes)
	}
	ps := make([]*proc, len(cl.nodes))
	errs := make([]error, len(cl.nodes))
	var wg sync.WaitGroup
	for i := range cl.nodes {
		wg.Go(func() {
			addr := "127.0.0.1:0"
			if i < len(listen) {
				addr = listen[i]
			}
			ps[i], errs[i] = startProc(ctx, cl.cfg.Exe, slotName(i), kindNode, cl.nodeArgs(addr), cl.cfg.Logs)
		})
	}
	wg.Wait()
	for i, p := range ps {
		if p != nil {
			cl.all = append(cl.all, p)
			cl.con.setName(p.address(), p.name)
			cl.nodes[i] = p
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, p := range ps {
		if _, _, err := cl.waitOnline(ctx, p, 0); err != nil {
			return err
		}
	}
	return nil
}

func (cl *cluster) nodeArgs(listen string) []string {
	return append(cl.childArgs(nodeRole), "-role", nodeRole, "-depends", coordRole, "-listen", listen)
}

// startNode starts the query node of slot i on listen.
func (cl *cluster) startNode(ctx context.Context, i int, listen string) (*proc, error) {
	p, err := cl.start(ctx, slotName(i), kindNode, cl.nodeArgs(listen))
	if err != nil {
		return nil, err
	}
	cl.nodes[i] = p
	return p, nil
}

// slotName names the query node of slot i: qn-a, qn-b, …
func slotName(i int) string { return "qn-" + nodeLetter(i) }

// nodeLetter names the i-th slot (from 0): a … z, then aa, ab …
// Letters, not numbers, so that names are not mistaken for ServerIDs.
func nodeLetter(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('a' + (i-1)%26)}, b...)
	}
	return string(b)
}

// statusAt returns the manager's view of the newest node of role at addr,
// other than not (0: any).
func (cl *cluster) statusAt(role, addr string, not int64) (clientmanager.NodeStatus, bool) {
	var best clientmanager.NodeStatus
	found := false
	for _, n := range cl.mgr.Status() {
		if n.Role == role && n.Address == addr && n.NodeID != not && (!found || n.NodeID > best.NodeID) {
			best, found = n, true
		}
	}
	return best, found
}

// nameOf returns the name of node id's component, or "node <id>".
func (cl *cluster) nameOf(id int64) string {
	if n, ok := cl.statusOf(id); ok {
		if name := cl.con.name(n.Address); name != n.Address {
			cl.idNames[id] = name
		}
	}
	if name, ok := cl.idNames[id]; ok {
		return name
	}
	return fmt.Sprintf("node %d", id)
}

// statusOf returns the manager's view of node id.
func (cl *cluster) statusOf(id int64) (clientmanager.NodeStatus, bool) {
	for _, n := range cl.mgr.Status() {
		if n.NodeID == id {
			return n, true
		}
	}
	return clientmanager.NodeStatus{}, false
}

// waitOnline waits until the manager sees p's node (other than node not)
// online, and returns its ServerID and when.
func (cl *cluster) waitOnline(ctx context.Context, p *proc, not int64) (int64, time.Time, error) {
	var id int64
	at, err := until(ctx, cl.cfg.StepTimeout, func() bool {
		n, ok := cl.statusAt(nodeRole, p.address(), not)
		id = n.NodeID
		return ok && n.State == clientmanager.NodeOnline
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%s not online for the demo's client manager: %w%s", p.name, err, p.lastWords())
	}
	cl.idNames[id] = p.name
	return id, at, nil
}

// waitCoordinatorOnline waits until the manager sees the active
// coordinator online, after since.
func (cl *cluster) waitCoordinatorOnline(ctx context.Context, since time.Time) error {
	_, err := until(ctx, cl.cfg.StepTimeout, func() bool {
		a := cl.active()
		if a == nil {
			return false
		}
		n, ok := cl.statusAt(coordRole, a.address(), 0)
		return ok && n.State == clientmanager.NodeOnline && !n.Since.Before(since)
	})
	if err != nil {
		var seen []string
		for _, n := range cl.mgr.Status() {
			if n.Role == coordRole {
				seen = append(seen, fmt.Sprintf("node %d at %s %s (%s)", n.NodeID, n.Address, n.State, orDash(n.LastError)))
			}
		}
		active := "none"
		if a := cl.active(); a != nil {
			active = a.name + " at " + a.address()
		}
		return fmt.Errorf("no active %s online for the demo's client manager (active: %s; seen: %s): %w",
			coordRole, active, orDash(strings.Join(seen, "; ")), err)
	}
	return nil
}

// until polls cond every millisecond until it holds, and returns when it
// first did; or an error after timeout or when ctx ends.
func until(ctx context.Context, timeout time.Duration, cond func() bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}

// serveHTTP serves the demo's status page: the view of its own client
// manager, which calls both roles.
func (cl *cluster) serveHTTP() error {
	cfg := debughttp.DefaultConfig()
	cfg.Title = "cmctl demo"
	h, err := debughttp.New(debughttp.Sources{Manager: cl.mgr, Gatherer: cl.reg}, cfg)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", cl.cfg.HTTPAddr)
	if err != nil {
		_ = h.Close()
		return fmt.Errorf("-%s: %w", examples.FlagHTTPAddr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	cl.httpURL = "http://" + lis.Addr().String()
	cl.httpStop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		wg.Wait()
		_ = h.Close()
	}
	return nil
}

// printProcesses prints every running component.
func (cl *cluster) printProcesses() {
	_ = cl.con.write(func(w io.Writer) error {
		headers := []string{"COMPONENT", "PID", "ADDRESS", "SERVER ID", "STATE"}
		if cl.cfg.HTTPAddr != "" {
			headers = append(headers, "STATUS PAGE")
		}
		t := newTable(w, "  ", headers...)
		for _, p := range append(append([]*proc(nil), cl.coords...), cl.nodes...) {
			role := nodeRole
			if p.kind == kindCoordinator {
				role = coordRole
			}
			id := "-"
			if n, ok := cl.statusAt(role, p.address(), 0); ok {
				id = fmt.Sprint(n.NodeID)
			}
			cells := []string{p.name, fmt.Sprint(p.pid()), p.address(), id, p.state()}
			if cl.cfg.HTTPAddr != "" {
				cells = append(cells, "http://"+p.debugAddr()+"/debug/clientmanager/ui")
			}
			t.row(cells...)
		}
		return t.flush()
	})
}

// shutdown stops the load, the status page, the components (query nodes
// first), the manager and etcd, and removes etcd's data (or, on a real
// etcd, the demo's keys). Safe on a partly started cluster.
func (cl *cluster) shutdown() error {
	start := time.Now()
	cl.con.printf("== shutdown: the load, the components, the client manager, etcd")
	if cl.load != nil {
		cl.load.stop()
	}
	if cl.httpStop != nil {
		cl.httpStop()
	}
	var errs []error
	stopAll := func(ps []*proc) {
		var wg sync.WaitGroup
		perr := make([]error, len(ps))
		for i, p := range ps {
			if p.running() {
				wg.Go(func() { perr[i] = p.stop() })
			}
		}
		wg.Wait()
		errs = append(errs, perr...)
	}
	var nodes, coords []*proc
	for _, p := range cl.all {
		if p.kind == kindNode {
			nodes = append(nodes, p)
		} else {
			coords = append(coords, p)
		}
	}
	stopAll(nodes)
	stopAll(coords)
	if len(cl.all) > 0 {
		cl.con.printf("  %d components stopped", len(cl.all))
	}
	if cl.mgr != nil {
		_ = cl.mgr.Close()
	}
	if cl.cli != nil {
		if cl.ownRoot {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := cl.cli.Delete(ctx, cl.root+"/", clientv3.WithPrefix())
			cancel()
			if err == nil {
				cl.con.printf("  removed the demo's keys under %s/", cl.root)
			}
		}
		_ = cl.cli.Close()
	}
	if cl.etcd != nil {
		if err := cl.etcd.close(); err != nil {
			errs = append(errs, err)
		} else if !cl.etcd.external {
			cl.con.printf("  etcd closed, %s removed", cl.etcd.dir)
		}
	}
	if err := cl.sec.close(); err != nil {
		errs = append(errs, err)
	}
	cl.con.printf("  done in %s", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// sessionKey returns the etcd key of node id of role.
func (cl *cluster) sessionKey(role string, id int64) string {
	sc := session.DefaultConfig()
	sc.RootPath = cl.root
	return sc.Key(role, id)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
