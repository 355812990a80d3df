package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/coordkit/clientmanager/internal/embedetcd"
)

// DefaultTestTimeout bounds every wait of the package's helpers, and is a
// sensible bound for tests that wait on etcd.
const DefaultTestTimeout = 20 * time.Second

// Member is one embedded etcd member.
type Member struct {
	// Client is connected to this member only; closed by t.Cleanup.
	Client *clientv3.Client

	cfg     embedetcd.Config // ports and initial cluster filled in at the first start
	etcd    *embedetcd.Etcd
	cleanup bool
}

// Start runs a single-member cluster and returns it once it serves.
func Start(t testing.TB) *Member {
	t.Helper()
	m := &Member{cfg: memberConfig(t, "m0")}
	m.start(t)
	waitReady(t, m)
	m.Client = NewClient(t, m.Endpoint())
	return m
}

// memberConfig is the configuration of a member with its data in
// t.TempDir(); the default fast elections keep fault tests short.
func memberConfig(t testing.TB, name string) embedetcd.Config {
	return embedetcd.Config{Dir: t.TempDir(), Name: name, InitialClusterToken: "etcdtest"}
}

// Endpoint returns the member's client address, host:port.
func (m *Member) Endpoint() string { return m.cfg.Endpoint() }

// Running reports whether the member is started.
func (m *Member) Running() bool { return m.etcd != nil }

// start launches the member (on its ports, if it ran before) without
// waiting until it serves.
func (m *Member) start(t testing.TB) {
	t.Helper()
	e, err := embedetcd.Launch(m.cfg)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	m.started(t, e)
}

// started records a member launched by e.
func (m *Member) started(t testing.TB, e *embedetcd.Etcd) {
	m.etcd, m.cfg = e, e.Config()
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
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTestTimeout)
	defer cancel()
	for _, m := range ms {
		if err := m.etcd.WaitReady(ctx); err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
	}
}

func (m *Member) stop() {
	if m.etcd == nil {
		return
	}
	m.etcd.Close()
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
		t.Fatalf("etcdtest: member %s is running", m.cfg.Name)
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
