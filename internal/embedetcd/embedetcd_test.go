package embedetcd

import (
	"context"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const testTimeout = 20 * time.Second

func newClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func TestStartServesAndRestartsOnSamePorts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	e, err := Start(ctx, Config{Dir: t.TempDir()})
	require.NoError(t, err)
	cfg := e.Config()
	require.Equal(t, DefaultName, cfg.Name)
	require.NotZero(t, cfg.ClientPort)
	require.NotEqual(t, cfg.ClientPort, cfg.PeerPort)
	require.Equal(t, "http://"+e.Endpoint(), e.ClientURL())
	require.True(t, e.IsLeader(), "a single member leads")

	cli := newClient(t, e.Endpoint())
	_, err = cli.Put(ctx, "k", "v1")
	require.NoError(t, err)

	e.Close()
	e.Close() // twice is safe
	require.False(t, e.IsLeader())
	for _, addr := range []string{e.Endpoint(), strings.TrimPrefix(e.PeerURL(), "http://")} {
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err, "Close lets go of %s", addr)
		require.NoError(t, l.Close())
	}

	e, err = Start(ctx, cfg)
	require.NoError(t, err, "a member starts again on its ports")
	require.Equal(t, cfg.Endpoint(), e.Endpoint())
	resp, err := cli.Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, "v1", string(resp.Kvs[0].Value), "data survives a restart")

	e.Kill()
	gctx, gcancel := context.WithTimeout(ctx, time.Second)
	_, err = cli.Get(gctx, "k")
	gcancel()
	require.Error(t, err, "a killed member does not answer")
	e.Close()
	l, err := net.Listen("tcp", e.Endpoint())
	require.NoError(t, err, "Close after Kill lets go of the client port")
	require.NoError(t, l.Close())
	e, err = Start(ctx, cfg)
	require.NoError(t, err, "a killed member starts again on its ports")
	defer e.Close()
	_, err = cli.Put(ctx, "k", "v2")
	require.NoError(t, err)
}

func TestStartClusterElectsOneLeaderAndReplicates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ms, err := StartCluster(ctx, []Config{{Dir: t.TempDir()}, {Dir: t.TempDir()}, {Dir: t.TempDir()}})
	require.NoError(t, err)
	defer func() {
		for _, m := range ms {
			m.Close()
		}
	}()
	require.Len(t, ms, 3)
	for i, m := range ms {
		require.Equal(t, "m"+string(rune('0'+i)), m.Config().Name)
		require.Equal(t, ms[0].Config().InitialCluster, m.Config().InitialCluster)
	}
	leaders := func() int {
		n := 0
		for _, m := range ms {
			if m.IsLeader() {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return leaders() == 1 }, testTimeout, 20*time.Millisecond)

	_, err = newClient(t, ms[0].Endpoint()).Put(ctx, "k", "v")
	require.NoError(t, err)
	resp, err := newClient(t, ms[2].Endpoint()).Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "a write through one member is read through another")

	// A member restarted while the others run rejoins and serves.
	cfg := ms[1].Config()
	ms[1].Close()
	ms[1], err = Start(ctx, cfg)
	require.NoError(t, err)
	resp, err = newClient(t, ms[1].Endpoint()).Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
}

func TestWaitReadyHonoursContextWithoutQuorum(t *testing.T) {
	ports, err := FreePorts(2)
	require.NoError(t, err)
	// The second member of the cluster never starts: no quorum, no leader.
	e, err := Launch(Config{Dir: t.TempDir(), Name: "a",
		InitialCluster: "a=http://127.0.0.1:" + strconv.Itoa(ports[0]) + ",b=http://127.0.0.1:" + strconv.Itoa(ports[1]),
		PeerPort:       ports[0]})
	require.NoError(t, err)
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = e.WaitReady(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, e.IsLeader())
}

func TestLaunchFailsOnATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	ports, err := FreePorts(1)
	require.NoError(t, err)
	_, err = Launch(Config{Dir: t.TempDir(), ClientPort: l.Addr().(*net.TCPAddr).Port, PeerPort: ports[0]})
	require.ErrorIs(t, err, syscall.EADDRINUSE, "a port given and held elsewhere is an error, after a few seconds of retries")
}

func TestLaunchRequiresDir(t *testing.T) {
	_, err := Launch(Config{})
	require.ErrorContains(t, err, "Dir is required")
	_, err = StartCluster(context.Background(), nil)
	require.Error(t, err)
}

func TestEmbedConfigAppliesDefaultsAndOptions(t *testing.T) {
	c := withDefaults(Config{Dir: "/d", ClientPort: 20001, PeerPort: 20002})
	ec := c.embedConfig()
	require.Equal(t, DefaultName, ec.Name)
	require.Equal(t, "/d", ec.Dir)
	require.Equal(t, "default=http://127.0.0.1:20002", ec.InitialCluster)
	require.Equal(t, DefaultClusterToken, ec.InitialClusterToken)
	require.Equal(t, uint(DefaultTickMs), ec.TickMs)
	require.Equal(t, uint(DefaultElectionMs), ec.ElectionMs)
	require.Equal(t, uint(DefaultBcryptCost), ec.BcryptCost)
	require.Equal(t, "http://127.0.0.1:20001", ec.ListenClientUrls[0].String())
	require.Equal(t, "http://127.0.0.1:20001", ec.AdvertiseClientUrls[0].String())
	require.Equal(t, "http://127.0.0.1:20002", ec.ListenPeerUrls[0].String())
	require.True(t, ec.ClientTLSInfo.Empty())
	require.Equal(t, DefaultReadyTimeout, c.ReadyTimeout)

	c = withDefaults(Config{Dir: "/d", Name: "n", ClientPort: 20001, PeerPort: 20002, InitialCluster: "n=x",
		QuotaBackendBytes: 8 << 30, SnapshotCount: 100, AutoCompactionMode: "revision", AutoCompactionRetention: "1000",
		TLS: &TLS{CertFile: "c", KeyFile: "k", CAFile: "ca", ClientCertAuth: true}})
	ec = c.embedConfig()
	require.Equal(t, "n=x", ec.InitialCluster)
	require.Equal(t, int64(8<<30), ec.QuotaBackendBytes)
	require.Equal(t, uint64(100), ec.SnapshotCount)
	require.Equal(t, "revision", ec.AutoCompactionMode)
	require.Equal(t, "1000", ec.AutoCompactionRetention)
	require.Equal(t, "https://127.0.0.1:20001", ec.ListenClientUrls[0].String())
	require.Equal(t, "https://127.0.0.1:20001", c.ClientURL())
	require.Equal(t, "c", ec.ClientTLSInfo.CertFile)
	require.Equal(t, "k", ec.ClientTLSInfo.KeyFile)
	require.Equal(t, "ca", ec.ClientTLSInfo.TrustedCAFile)
	require.True(t, ec.ClientTLSInfo.ClientCertAuth)
}

func TestFreePortsAreDistinctLowAndFree(t *testing.T) {
	ports, err := FreePorts(8)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, p := range ports {
		require.False(t, seen[p], "port %d twice", p)
		seen[p] = true
		require.GreaterOrEqual(t, p, lowPortBase)
		require.Less(t, p, lowPortBase+lowPortSpan)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		require.NoError(t, err)
		require.NoError(t, l.Close())
	}
}
