//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

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

// systemEtcd is a single-member cluster run by the etcd binary.
type systemEtcd struct {
	bin        string
	dir        string
	clientPort int
	peerPort   int
	p          *proctest.Proc
	starts     int
}

func startSystemEtcd(t *testing.T) *systemEtcd {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("ETCD=system needs the etcd binary on PATH (Debian: apt-get install etcd-server; make integration ETCD=system installs it): %v", err)
	}
	ports := proctest.FreePorts(t, 2)
	e := &systemEtcd{bin: bin, dir: t.TempDir(), clientPort: ports[0], peerPort: ports[1]}
	e.start(t)
	return e
}

func (e *systemEtcd) Endpoint() string { return "127.0.0.1:" + strconv.Itoa(e.clientPort) }

func (e *systemEtcd) start(t testing.TB) {
	t.Helper()
	client := "http://" + e.Endpoint()
	peer := "http://127.0.0.1:" + strconv.Itoa(e.peerPort)
	e.starts++
	e.p = proctest.Start(t, e.bin, fmt.Sprintf("etcd#%d", e.starts),
		"--name", "m0", "--data-dir", e.dir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "m0="+peer, "--initial-cluster-token", "integration",
		// Fast elections, as the embedded member's, keep fault tests short.
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--log-level", "warn")
	e.waitReady(t)
}

// waitReady waits until the server answers a read.
func (e *systemEtcd) waitReady(t testing.TB) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer func() { _ = cli.Close() }()
	deadline := time.Now().Add(procWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "integration/ready")
		cancel()
		if err == nil {
			return
		}
		select {
		case <-e.p.Exited():
			t.Fatalf("etcd exited: %s", e.p.Stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd not ready within %s: %v", procWait, err)
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
}
