//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/internal/proctest"
	"github.com/coordkit/clientmanager/session"
)

// The process scenarios' settings: a short TTL keeps them quick, and the
// example binaries' Echo is the method called.
const (
	procTTL      = 2 * time.Second
	procRootPath = "integration/proc"
	procEcho     = "/coordkit.examples.Echo/Echo"
	procWait     = 30 * time.Second // bound of every wait on a process
)

// clusterConfig describes the processes of one scenario.
type clusterConfig struct {
	bin  string // "node" or "coordinator"
	role string
	n    int
	// links puts a fault proxy on each manager↔node link: the manager
	// dials a node's address through the node's proxy.
	links bool
	// lateManager leaves the manager to startManager, called once the
	// processes registered.
	lateManager bool
	args        []string // more flags of every process
	// members > 1 runs etcd as a cluster of that many members (see
	// startEtcdCluster) instead of one server; every process then reaches
	// every member directly, without a fault proxy.
	members int
	// secure turns security on (see startSecure): etcd over TLS with
	// client certificates and authentication, mutual TLS between the
	// manager and the processes. Not with members > 1.
	secure bool
}

// cluster is one etcd (see startEtcd), n processes of one role, each reaching
// etcd through a fault proxy of its own, and a client manager of the role
// in the test process.
type cluster struct {
	t     *testing.T
	cfg   clusterConfig
	bin   string           // path of the binary
	etcd  etcdServer       // nil when clusterConfig.members > 1
	ecl   etcdCluster      // nil unless clusterConfig.members > 1
	eps   []string         // etcd's client endpoints
	cli   *clientv3.Client // to etcd, directly
	scfg  session.Config
	nodes []*procNode
	mgr   *clientmanager.Manager
	logs  *observer.ObservedLogs
	// links maps a node's address to its manager↔node proxy; written
	// before the manager exists, read-only after.
	links  map[string]string
	events *availability
	sec    *secureSetup // nil unless clusterConfig.secure
}

// procNode is one process slot: a port and proxies kept across restarts,
// and the process currently running in it.
type procNode struct {
	c       *cluster
	name    string
	addr    string          // 127.0.0.1:port, the same for every start
	etcd    *etcdtest.Proxy // node↔etcd link; nil with a cluster of members
	link    *etcdtest.Proxy // manager↔node link; nil unless clusterConfig.links
	p       *proctest.Proc  // the current process; nil before the first start
	starts  int
	healthy time.Time // when the last process started by restart was Healthy
}

// startCluster builds the binaries (once per test binary), starts etcd
// (see startEtcd) and the manager, and creates n process slots; no
// process runs yet.
func startCluster(t *testing.T, cfg clusterConfig) *cluster {
	t.Helper()
	dir := builds.Build(t, "./examples/node", "./examples/coordinator")
	c := &cluster{t: t, cfg: cfg, bin: filepath.Join(dir, cfg.bin),
		scfg: sessionConfig(procTTL), links: make(map[string]string)}
	switch {
	case cfg.members > 1:
		c.ecl = startEtcdCluster(t, cfg.members)
		c.eps = c.ecl.Endpoints()
	case cfg.secure:
		c.sec = startSecure(t, cfg.role)
		c.etcd = c.sec.etcd
		c.eps = []string{c.etcd.Endpoint()}
	default:
		c.etcd = startEtcd(t)
		c.eps = []string{c.etcd.Endpoint()}
	}
	if c.sec != nil {
		c.cli = c.sec.root
	} else {
		c.cli = etcdtest.NewClient(t, c.eps...)
	}
	c.scfg.RootPath = procRootPath
	for i, port := range proctest.FreePorts(t, cfg.n) {
		n := &procNode{c: c, name: fmt.Sprintf("%s-%d", cfg.bin, i+1), addr: "127.0.0.1:" + strconv.Itoa(port)}
		if c.etcd != nil {
			n.etcd = etcdtest.NewProxy(t, c.etcd.Endpoint())
		}
		if cfg.links {
			n.link = etcdtest.NewProxy(t, n.addr)
			c.links[n.addr] = n.link.Addr()
		}
		c.nodes = append(c.nodes, n)
	}
	if !cfg.lateManager {
		c.startManager()
	}
	return c
}

// startManager starts the manager of the role in the test process.
func (c *cluster) startManager() {
	t := c.t
	var d net.Dialer
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		if p, ok := c.links[addr]; ok {
			addr = p
		}
		return d.DialContext(ctx, "tcp", addr)
	}
	if c.sec != nil {
		c.mgr, c.logs = c.sec.newManager(t, c.scfg, c.cfg.role, dial)
	} else {
		c.mgr, c.logs = newManagerOf(t, c.eps, c.scfg, c.cfg.role, dial)
	}
	c.events = watchAvailability(t, c.mgr, c.cfg.role)
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range c.logs.Filter(func(e observer.LoggedEntry) bool { return e.Level >= zapcore.WarnLevel }).All() {
				t.Logf("manager %s: %s %v", e.Level, e.Message, e.ContextMap())
			}
		}
	})
}

// startAll starts every process and waits until each is in state want
// ("Healthy", or "StandBy" for all but the first of an exclusive role).
func (c *cluster) startAll(want ...string) {
	c.t.Helper()
	for i, n := range c.nodes {
		n.start()
		s := "Healthy"
		if i < len(want) {
			s = want[i]
		}
		n.expectState(s)
	}
}

// load starts calls of the role's Echo from goroutines callers, each at
// most once per pace and bounded by 3 s, and waits until they run.
func (c *cluster) load(goroutines int, pace time.Duration) *load {
	c.t.Helper()
	l := startLoadOf(c.mgr, loadSpec{role: c.cfg.role, method: procEcho, goroutines: goroutines, pace: pace,
		timeout: 3 * time.Second})
	c.t.Cleanup(func() { l.stop() })
	require.Eventually(c.t, func() bool { return l.succeeded() >= 20 }, procWait, 10*time.Millisecond, "the load runs")
	return l
}

// available returns the addresses of the role's available nodes.
func (c *cluster) available() []string {
	var out []string
	for _, cl := range c.mgr.GetClients(c.cfg.role) {
		out = append(out, cl.Session().Address)
	}
	slices.Sort(out)
	return out
}

// waitAvailable waits until the available nodes are exactly ns, each
// under the ServerID its current process registered (so a stale record
// of a previous process at the address does not count), and returns when
// it saw that; it fails the test when they are not within procWait. A
// node left out by the known registration race is restarted (see
// recoverRace).
func (c *cluster) waitAvailable(ns ...*procNode) time.Time {
	c.t.Helper()
	for range 5 {
		at, ok := c.awaitAvailable(procWait, ns...)
		if ok {
			return at
		}
		if !c.recoverRace() {
			break
		}
	}
	c.t.Logf("available: %v; registered in etcd: %v", c.available(), c.registered())
	for _, s := range c.mgr.Status() {
		c.t.Logf("manager status: node %d at %s: %s since %s, breaker %s; last error %q",
			s.NodeID, s.Address, s.State, s.Since.Format("15:04:05.000"), s.Breaker, s.LastError)
	}
	c.t.Fatalf("the available nodes are not %v within %s", addrs(ns), procWait)
	return time.Time{}
}

// awaitAvailable is waitAvailable without failing or recovering: ok is
// false when the available nodes are not ns within d, or as soon as the
// manager rejected a current process in the registration race.
func (c *cluster) awaitAvailable(d time.Duration, ns ...*procNode) (at time.Time, ok bool) {
	want := addrs(ns)
	deadline := time.Now().Add(d)
	for {
		if c.availableAre(want) {
			return time.Now(), true
		}
		if time.Now().After(deadline) || len(c.raced()) > 0 {
			return time.Time{}, false
		}
		time.Sleep(5 * time.Millisecond) // polling the manager and etcd
	}
}

func (c *cluster) availableAre(want []string) bool {
	if !slices.Equal(c.available(), want) {
		return false
	}
	reg := c.registered()
	for _, cl := range c.mgr.GetClients(c.cfg.role) {
		if reg[cl.Session().Address] != cl.NodeID() {
			return false
		}
	}
	return true
}

func addrs(ns []*procNode) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.addr)
	}
	slices.Sort(out)
	return out
}

// registered maps the address of each session of the role in etcd to its
// ServerID.
func (c *cluster) registered() map[string]int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ss, _, err := session.List(ctx, c.cli, c.scfg, c.cfg.role)
	if err != nil {
		return nil
	}
	out := make(map[string]int64, len(ss))
	for _, s := range ss {
		out[s.Address] = s.ServerID
	}
	return out
}

// nameOf returns the name of the slot at addr, or addr.
func (c *cluster) nameOf(addr string) string {
	for _, n := range c.nodes {
		if n.addr == addr {
			return n.name
		}
	}
	if addr == "" {
		return "-"
	}
	return addr
}

// args are the flags of every start of the slot.
func (n *procNode) args() []string {
	etcd := strings.Join(n.c.eps, ",")
	if n.etcd != nil {
		etcd = n.etcd.Addr()
	}
	a := []string{"-etcd", etcd, "-root-path", procRootPath, "-role", n.c.cfg.role,
		"-listen", n.addr, "-ttl", procTTL.String(), "-stop-timeout", "10s"}
	if n.c.cfg.bin == "coordinator" {
		a = append(a, "-call=") // the test's manager is the caller
	}
	if n.c.sec != nil {
		a = append(a, n.c.sec.nodeArgs...)
	}
	return append(a, n.c.cfg.args...)
}

// start starts a new process in the slot and waits until it listens.
func (n *procNode) start() {
	t := n.c.t
	t.Helper()
	if n.p != nil {
		select {
		case <-n.p.Exited():
		default:
			t.Fatalf("%s is running", n.name)
		}
	}
	n.starts++
	n.p = proctest.Start(t, n.c.bin, fmt.Sprintf("%s#%d", n.name, n.starts), n.args()...)
	l := n.p.Expect("listening ", procWait)
	require.Equal(t, n.addr, strings.TrimPrefix(l.Text, "listening "))
}

// expectState waits until the process prints its move to state s and
// returns that line.
func (n *procNode) expectState(s string) proctest.Line {
	n.c.t.Helper()
	return n.p.Expect("state "+s+" ", procWait)
}

// stop sends SIGTERM and waits for a clean exit; it returns when the
// signal was sent.
func (n *procNode) stop() time.Time {
	n.c.t.Helper()
	at := n.p.Stop()
	require.NoError(n.c.t, n.p.WaitExit(procWait), "%s exits cleanly after SIGTERM", n.name)
	return at
}

// kill sends SIGKILL and waits for the exit.
func (n *procNode) kill() time.Time {
	n.c.t.Helper()
	at := n.p.Kill()
	require.Error(n.c.t, n.p.WaitExit(procWait))
	return at
}

// running reports whether the slot's process has not exited.
func (n *procNode) running() bool {
	select {
	case <-n.p.Exited():
		return false
	default:
		return true
	}
}
