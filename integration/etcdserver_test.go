//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/internal/proctest"
)

// etcdServer is the etcd of a process scenario: one embedded member, or
// with ETCD=system one process of the etcd binary on PATH (Debian's
// etcd-server package: `make integration ETCD=system` installs it).
type etcdServer interface {
	// Endpoint returns the client address, host:port.
	Endpoint() string
	// Stop stops the server; its data stays for Restart.
	Stop(t testing.TB)
	// Restart starts it again on the same port and data, and waits until
	// it serves.
	Restart(t testing.TB)
}

// startEtcd starts the etcd of a scenario, as ETCD says: unset or
// "embedded" for internal/etcdtest's embedded member, "system" for the
// etcd binary on PATH.
func startEtcd(t *testing.T) etcdServer {
	t.Helper()
	switch e := os.Getenv("ETCD"); e {
	case "", "embedded":
		return etcdtest.Start(t)
	case "system":
		return startSystemEtcd(t)
	default:
		t.Fatalf("ETCD (%q) must be embedded or system", e)
		return nil
	}
}

// systemEtcd is one member run by the etcd binary: a single-member
// cluster, or a member of a systemCluster.
type systemEtcd struct {
	bin            string
	name           string
	dir            string
	clientPort     int
	peerPort       int
	initialCluster string // name=peer URL of every member
	p              *proctest.Proc
	starts         int
}

func startSystemEtcd(t *testing.T) *systemEtcd {
	t.Helper()
	e := newSystemEtcd(t, systemEtcdBin(t), "m0")
	e.initialCluster = e.name + "=" + e.peerURL()
	e.start(t)
	e.waitReady(t)
	return e
}

// systemEtcdBin returns the path of the etcd binary on PATH.
func systemEtcdBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("ETCD=system needs the etcd binary on PATH (Debian: apt-get install etcd-server; make integration ETCD=system installs it): %v", err)
	}
	return bin
}

// newSystemEtcd returns a member with ports of its own (no port 0: a
// restarted member must find its ports again), not started.
func newSystemEtcd(t *testing.T, bin, name string) *systemEtcd {
	t.Helper()
	ports := proctest.FreePorts(t, 2)
	return &systemEtcd{bin: bin, name: name, dir: t.TempDir(), clientPort: ports[0], peerPort: ports[1]}
}

func (e *systemEtcd) peerURL() string { return "http://127.0.0.1:" + strconv.Itoa(e.peerPort) }

func (e *systemEtcd) Endpoint() string { return "127.0.0.1:" + strconv.Itoa(e.clientPort) }

// start starts the member's process; it does not wait until it serves
// (a cluster's first member serves once a quorum runs).
func (e *systemEtcd) start(t testing.TB) { e.launch(t, "http", "integration") }

// launch starts the member's process serving clients at
// scheme://Endpoint(), with extra flags after the common ones.
func (e *systemEtcd) launch(t testing.TB, scheme, token string, extra ...string) {
	t.Helper()
	client := scheme + "://" + e.Endpoint()
	peer := e.peerURL()
	e.starts++
	args := append([]string{"--name", e.name, "--data-dir", e.dir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", e.initialCluster, "--initial-cluster-token", token,
		// Fast elections, as the embedded member's, keep fault tests short.
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--log-level", "warn"}, extra...)
	e.p = proctest.Start(t, e.bin, fmt.Sprintf("etcd-%s#%d", e.name, e.starts), args...)
}

// waitReady waits until the server answers a read.
func (e *systemEtcd) waitReady(t testing.TB) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer func() { _ = cli.Close() }()
	e.waitServing(t, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Get(ctx, "integration/ready")
		return err
	})
}

// waitServing polls probe until it returns nil, failing at once when the
// process exits and after procWait. It polls rather than use
// require.Eventually, whose condition runs in a goroutine of its own
// and so cannot stop the test when the process exits.
func (e *systemEtcd) waitServing(t testing.TB, probe func() error) {
	t.Helper()
	deadline := time.Now().Add(procWait)
	for {
		err := probe()
		if err == nil {
			return
		}
		select {
		case <-e.p.Exited():
			t.Fatalf("etcd %s exited: %s", e.name, e.p.Stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd %s not ready within %s: %v", e.name, procWait, err)
		}
		time.Sleep(50 * time.Millisecond) // polling an external process
	}
}

func (e *systemEtcd) Stop(t testing.TB) {
	t.Helper()
	e.p.Signal(syscall.SIGTERM)
	_ = e.p.WaitExit(procWait)
}

func (e *systemEtcd) Restart(t testing.TB) {
	t.Helper()
	e.start(t)
	e.waitReady(t)
}

// etcdCluster is the etcd of a scenario that needs several members: an
// embedded cluster (internal/etcdtest), or with ETCD=system one process of
// the etcd binary per member.
type etcdCluster interface {
	// Endpoints returns every member's client address.
	Endpoints() []string
	// StopMember takes member i down: an embedded member is closed (it
	// hands its leadership over first); a process is killed (SIGKILL), a
	// crash that leaves the others to elect a leader.
	StopMember(t testing.TB, i int)
	// RestartMember starts member i again on its ports and data.
	RestartMember(t testing.TB, i int)
	// WaitLeader waits until the running members agree on a leader and
	// returns its index.
	WaitLeader(t testing.TB) int
}

// startEtcdCluster starts an n-member cluster, as ETCD says (see
// startEtcd).
func startEtcdCluster(t *testing.T, n int) etcdCluster {
	t.Helper()
	switch e := os.Getenv("ETCD"); e {
	case "", "embedded":
		return etcdtest.StartCluster(t, n)
	case "system":
		return startSystemCluster(t, n)
	default:
		t.Fatalf("ETCD (%q) must be embedded or system", e)
		return nil
	}
}

// systemCluster is an n-member cluster of etcd processes.
type systemCluster struct {
	members []*systemEtcd
	cli     *clientv3.Client // to every member, for their status
}

func startSystemCluster(t *testing.T, n int) *systemCluster {
	t.Helper()
	bin := systemEtcdBin(t)
	c := &systemCluster{}
	var peers []string
	for i := range n {
		m := newSystemEtcd(t, bin, fmt.Sprintf("m%d", i))
		c.members = append(c.members, m)
		peers = append(peers, m.name+"="+m.peerURL())
	}
	// Every process first, then the waits: a member serves once a quorum
	// of them runs.
	for _, m := range c.members {
		m.initialCluster = strings.Join(peers, ",")
		m.start(t)
	}
	for _, m := range c.members {
		m.waitReady(t)
	}
	c.cli = etcdtest.NewClient(t, c.Endpoints()...)
	return c
}

func (c *systemCluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.Endpoint()
	}
	return eps
}

func (c *systemCluster) StopMember(t testing.TB, i int) {
	t.Helper()
	m := c.members[i]
	m.p.Kill()
	_ = m.p.WaitExit(procWait)
}

func (c *systemCluster) RestartMember(t testing.TB, i int) {
	t.Helper()
	c.members[i].start(t)
	c.members[i].waitReady(t)
}

func (c *systemCluster) WaitLeader(t testing.TB) int {
	t.Helper()
	leader := -1
	require.Eventually(t, func() bool {
		leader = c.leader()
		return leader >= 0
	}, procWait, 20*time.Millisecond, "no etcd leader within %s", procWait)
	return leader
}

// leader returns the index of the leader that every running member
// names, or -1.
func (c *systemCluster) leader() int {
	var leader uint64
	for _, m := range c.members {
		select {
		case <-m.p.Exited():
			continue
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		st, err := c.cli.Status(ctx, m.Endpoint())
		cancel()
		if err != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			return -1
		}
		leader = st.Leader
	}
	for i, m := range c.members {
		select {
		case <-m.p.Exited():
			continue
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		st, err := c.cli.Status(ctx, m.Endpoint())
		cancel()
		if err == nil && st.Header.MemberId == leader {
			return i
		}
	}
	return -1
}
