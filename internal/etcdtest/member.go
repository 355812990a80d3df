package etcdtest

import (
	"errors"
	"fmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// DefaultTestTimeout bounds every wait of the package's helpers, and is a
// sensible bound for tests that wait on etcd.
const DefaultTestTimeout = 20 * time.Second

// Member is one embedded etcd member.
type Member struct {
	// Client is connected to this member only; closed by t.Cleanup.
	Client *clientv3.Client

	name           string
	dir            string
	clientPort     int
	peerPort       int
	initialCluster string
	etcd           *embed.Etcd
	cleanup        bool
}

// Start runs a single-member cluster and returns it once it serves.
func Start(t testing.TB) *Member {
	t.Helper()
	m := newMember(t, "m0")
	m.initialCluster = m.name + "=" + m.peerURL()
	m.start(t)
	waitReady(t, m)
	m.Client = NewClient(t, m.Endpoint())
	return m
}

func newMember(t testing.TB, name string) *Member {
	t.Helper()
	ports := freePorts(t, 2)
	return &Member{name: name, dir: t.TempDir(), clientPort: ports[0], peerPort: ports[1]}
}

// Endpoint returns the member's client address, host:port.
func (m *Member) Endpoint() string { return "127.0.0.1:" + strconv.Itoa(m.clientPort) }

func (m *Member) peerURL() string { return "http://127.0.0.1:" + strconv.Itoa(m.peerPort) }

// Running reports whether the member is started.
func (m *Member) Running() bool { return m.etcd != nil }

func (m *Member) start(t testing.TB) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu := mustURL(t, "http://"+m.Endpoint())
	pu := mustURL(t, m.peerURL())
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = m.initialCluster
	cfg.InitialClusterToken = "etcdtest"
	// Fast elections keep fault tests short.
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	e, err := embed.StartEtcd(cfg)
	for wait := time.Now().Add(5 * time.Second); err != nil && errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(wait); {
		// A restarted member's port can still be held for a moment by the
		// stopped member's sockets: try again.
		time.Sleep(50 * time.Millisecond)
		e, err = embed.StartEtcd(cfg)
	}
	if err != nil {
		t.Fatalf("etcdtest: start member %s: %v", m.name, err)
	}
	m.etcd = e
	if !m.cleanup {
		// Registered once, at the first start: a member restarted mid-test
		// must still be stopped after the clients created before it, as
		// t.Cleanup runs last-in first-out.
		m.cleanup = true
		t.Cleanup(func() { m.stop() })
	}
}

func waitReady(t testing.TB, ms ...*Member) {
	t.Helper()
	deadline := time.After(DefaultTestTimeout)
	for _, m := range ms {
		select {
		case <-m.etcd.Server.ReadyNotify():
		case err := <-m.etcd.Err():
			t.Fatalf("etcdtest: member %s failed: %v", m.name, err)
		case <-deadline:
			t.Fatalf("etcdtest: member %s not ready within %s", m.name, DefaultTestTimeout)
		}
	}
}

func (m *Member) stop() {
	if m.etcd == nil {
		return
	}
	m.etcd.Close()
	<-m.etcd.Server.StopNotify()
	m.etcd = nil
}

// Stop stops the member; its data stays for Restart.
func (m *Member) Stop(t testing.TB) {
	t.Helper()
	m.stop()
}

// Restart starts a stopped member again on the same ports and data, and
// waits until it serves (for a cluster member: until it has a leader).
func (m *Member) Restart(t testing.TB) {
	t.Helper()
	if m.etcd != nil {
		t.Fatalf("etcdtest: member %s is running", m.name)
	}
	m.start(t)
	waitReady(t, m)
}

// NewClient dials endpoints with short timeouts suited to fault tests; the
// client is closed by t.Cleanup.
func NewClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          2 * time.Second,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		Logger:               zap.NewNop(),
		// The reconnect backoff of session.EtcdDialOptions (which this
		// package, imported by session's tests, cannot import).
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		t.Fatalf("etcdtest: client for %v: %v", endpoints, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// freePorts returns n ports that are free now, taken below the kernel's
// ephemeral range (32768–60999 by default on Linux): a member restarted
// on its port must not find it taken by some connection's local end.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ls := make([]net.Listener, 0, n)
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		port := lowPortBase + rand.IntN(lowPortSpan)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	if len(ports) < n {
		t.Fatalf("etcdtest: no %d free ports in [%d, %d)", n, lowPortBase, lowPortBase+lowPortSpan)
	}
	return ports
}

const lowPortBase, lowPortSpan = 20000, 12000

func mustURL(t testing.TB, s string) url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	return *u
}

func joinCluster(ms []*Member) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s=%s", m.name, m.peerURL())
	}
	return strings.Join(parts, ",")
}
