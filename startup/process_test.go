package startup

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/internal/proctest"
	"github.com/coordkit/clientmanager/session"
)

// procTTL is the session TTL of the example processes.
const procTTL = 2 * time.Second

func procArgs(etcd, rootPath string) []string {
	return []string{"-etcd", etcd, "-root-path", rootPath, "-ttl", procTTL.String(), "-stop-timeout", "10s"}
}

// TestProcessActiveStandby runs three coordinator processes of one
// exclusive role: one active, two standbys. The active one is killed with
// SIGKILL (a standby takes over once the lease expires), then the new
// active one gets SIGTERM (the last standby takes over at once).
func TestProcessActiveStandby(t *testing.T) {
	bin := buildBinaries(t) + "/coordinator"
	m := etcdtest.Start(t)
	args := procArgs(m.Endpoint(), "proc/standby")
	a := startProc(t, bin, "coordinator-a", args...)
	a.expectState(StateHealthy, testTimeout)
	b := startProc(t, bin, "coordinator-b", args...)
	b.expectState(StateStandBy, testTimeout)
	c := startProc(t, bin, "coordinator-c", args...)
	c.expectState(StateStandBy, testTimeout)

	killed := a.Signal(syscall.SIGKILL)
	var active, standby *proc
	var at proctest.Line
	require.Eventually(t, func() bool {
		for _, p := range []*proc{b, c} {
			if l, ok := p.Find("state Healthy "); ok {
				active, at = p, l
				return true
			}
		}
		return false
	}, testTimeout, 5*time.Millisecond, "a standby takes over")
	standby = b
	if active == b {
		standby = c
	}
	takeover := at.At.Sub(killed)
	t.Logf("takeover after SIGKILL of the active coordinator: %s (TTL %s)", takeover, procTTL)
	require.Less(t, takeover, procTTL+time.Second)
	_, ok := standby.Find("state Healthy ")
	require.False(t, ok, "only one process is active")

	terminated := active.Signal(syscall.SIGTERM)
	at = standby.expectState(StateHealthy, testTimeout)
	takeover = at.At.Sub(terminated)
	t.Logf("takeover after SIGTERM of the active coordinator: %s", takeover)
	require.Less(t, takeover, time.Second)
	require.NoError(t, active.WaitExit(testTimeout), "exit code 0 after SIGTERM")
	active.expectState(StateStopped, time.Second)

	standby.Signal(syscall.SIGINT)
	require.NoError(t, standby.WaitExit(testTimeout), "exit code 0 after SIGINT")
	require.Error(t, a.WaitExit(testTimeout), "the killed process did not exit cleanly")
}

// TestProcessNodeSIGTERM stops node processes with SIGTERM: watchers see
// Stopping, then the session goes; a call in flight completes and new
// calls are refused meanwhile.
func TestProcessNodeSIGTERM(t *testing.T) {
	bin := buildBinaries(t) + "/node"
	m := etcdtest.Start(t)
	scfg := testSessionConfig()
	scfg.RootPath = "proc/node"
	events := watch(t, m.Client, scfg, "querynode")
	args := procArgs(m.Endpoint(), scfg.RootPath)

	t.Run("call in flight", func(t *testing.T) {
		n := startProc(t, bin, "node-1", args...)
		n.expectState(StateHealthy, testTimeout)
		ev := nextEvent(t, events)
		require.Equal(t, session.EventAdd, ev.Type)
		require.Equal(t, n.addr, ev.Session.Address)
		id := ev.Session.ServerID

		conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		ctx := testCtx(t)
		const slow = 2 * time.Second
		inFlight := make(chan error, 1)
		go func() {
			inFlight <- conn.Invoke(ctx, "/coordkit.examples.Echo/Slow", durationpb.New(slow), new(emptypb.Empty))
		}()
		n.Expect("slow started", testTimeout)

		sent := n.Signal(syscall.SIGTERM)
		ev = nextEvent(t, events)
		require.Equal(t, session.EventUpdate, ev.Type)
		require.Equal(t, id, ev.Session.ServerID)
		require.True(t, ev.Session.Stopping)
		t.Logf("SIGTERM → Update(Stopping): %s", time.Since(sent))
		// Calls are refused once the lame-duck wait is over.
		n.expectState(StateStopping, testTimeout)
		t.Logf("SIGTERM → state Stopping: %s", time.Since(sent))

		err = conn.Invoke(ctx, "/coordkit.examples.Echo/Echo", wrapperspb.String("hi"), new(wrapperspb.StringValue))
		require.Equal(t, codes.Unavailable, status.Code(err), "a new call is refused: %v", err)
		if s, ok := StateFromError(err); ok {
			require.Equal(t, StateStopping, s)
		}
		require.NoError(t, <-inFlight, "the call in flight completes")

		ev = nextEvent(t, events)
		require.Equal(t, session.EventDel, ev.Type)
		require.Equal(t, id, ev.Session.ServerID)
		t.Logf("SIGTERM → Del with a %s call in flight: %s", slow, time.Since(sent))
		require.NoError(t, n.WaitExit(testTimeout), "exit code 0 after SIGTERM")
		n.expectState(StateStopped, time.Second)
	})

	t.Run("idle", func(t *testing.T) {
		n := startProc(t, bin, "node-2", args...)
		n.expectState(StateHealthy, testTimeout)
		ev := nextEvent(t, events)
		require.Equal(t, session.EventAdd, ev.Type)
		id := ev.Session.ServerID

		sent := n.Signal(syscall.SIGTERM)
		for {
			ev = nextEvent(t, events)
			require.Equal(t, id, ev.Session.ServerID)
			if ev.Type == session.EventUpdate {
				require.True(t, ev.Session.Stopping)
				t.Logf("SIGTERM → Update(Stopping): %s", time.Since(sent))
				continue
			}
			require.Equal(t, session.EventDel, ev.Type)
			break
		}
		t.Logf("SIGTERM → Del, idle: %s", time.Since(sent))
		require.NoError(t, n.WaitExit(testTimeout), "exit code 0 after SIGTERM")
	})
}

// TestProcessNodeWaitsForCoordinator starts a node that depends on the
// coordinator's role before any coordinator runs: it waits, then becomes
// Healthy once the coordinator registers.
func TestProcessNodeWaitsForCoordinator(t *testing.T) {
	dir := buildBinaries(t)
	m := etcdtest.Start(t)
	args := procArgs(m.Endpoint(), "proc/deps")
	n := startProc(t, dir+"/node", "node", append(args, "-depends", "rootcoord", "-dependency-timeout", "20s")...)
	n.expectState(StateWaitingDependencies, testTimeout)
	_, ok := n.Find("state Starting ")
	require.False(t, ok, "the node waits for its dependency")

	c := startProc(t, dir+"/coordinator", "coordinator", args...)
	healthy := c.expectState(StateHealthy, testTimeout)
	ready := n.expectState(StateHealthy, testTimeout)
	t.Logf("node Healthy %s after the coordinator", ready.At.Sub(healthy.At))
	require.Less(t, ready.At.Sub(healthy.At), 5*time.Second)

	n.Signal(syscall.SIGTERM)
	c.Signal(syscall.SIGTERM)
	require.NoError(t, n.WaitExit(testTimeout))
	require.NoError(t, c.WaitExit(testTimeout))
}
