//go:build integration

package integration

import (
	"context"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/proctest"
	"github.com/coordkit/clientmanager/session"
)

// TestProcBadInput writes bad values straight into etcd, under the
// sessions of a role two node processes serve while the manager calls
// them: malformed JSON, a record over 64 KiB, a record of another role, a
// node's record copied under another node's key and under the role's
// exclusive key, and a corrupted ServerID counter. Nothing crashes, the
// two nodes stay available and every call succeeds; a node stopped while
// a copy of its record stays is not called; a new node cannot register
// under the corrupted counter and says why; invalid flags are refused
// with the field and value named.
func TestProcBadInput(t *testing.T) {
	c := startCluster(t, clusterConfig{bin: "node", role: role, n: 2})
	c.startAll()
	n1, n2 := c.nodes[0], c.nodes[1]
	c.waitAvailable(n1, n2)
	l := c.load(loadCallers, loadPace)
	var tl timeline
	tl.mark("both up")
	l.waitCalls(t, 100)

	tl.mark("bad values written")
	cli := c.cli
	key := func(name string) string { return path.Join(c.scfg.Prefix(), name) }
	n1Rec := getValue(t, cli, key(fmt.Sprintf("%s-%d", role, c.registered()[n1.addr])))
	huge := fmt.Sprintf(`{"ServerID":9002,"ServerName":%q,"Address":%q,"Pad":%q}`, role, n2.addr,
		strings.Repeat("x", session.MaxValueSize))
	bad := map[string]string{
		key(role + "-9001"): `{"ServerID":9001,"ServerName":`, // malformed JSON
		key(role + "-9002"): huge,                             // > 64 KiB
		key(role + "-9003"): fmt.Sprintf(`{"ServerID":9003,"ServerName":"datanode","Address":%q}`, n2.addr),
		key(role + "-9004"): n1Rec, // node-1's record under another ServerID's key
		key(role):           n1Rec, // and under the role's exclusive key, without a lease
		key(role + "-9005"): "",    // empty
		key(role + "-x"):    `{}`,  // not a key of a session
		c.scfg.IDKey():      "not-a-number",
	}
	for k, v := range bad {
		put(t, cli, k, v)
	}
	// Nothing changes for the manager: the two nodes stay, and no other.
	require.Never(t, func() bool { return !c.availableAre(addrs([]*procNode{n1, n2})) }, 2*time.Second,
		20*time.Millisecond, "the available set changed")
	l.waitCalls(t, 100)

	// A new node cannot take a ServerID from the corrupted counter: it
	// exits and says why.
	refused := startFailing(t, c, "node-new", "-etcd", c.etcd.Endpoint(), "-root-path", procRootPath, "-ttl", procTTL.String())
	require.Contains(t, refused, "ServerID counter")
	require.Contains(t, refused, `not-a-number`)
	// Invalid settings are refused, naming the field and the value.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-ttl", "1500ms"}, "TTL (1.5s) must be a whole number of seconds"},
		{[]string{"-ttl", "0s"}, "TTL (0s) must be ≥ 1s"},
		{[]string{"-role", "query/node"}, `Session.ServerName: role (\"query/node\") must be non-empty, without '/'`},
		{[]string{"-stop-timeout", "0s"}, "StopTimeout (0s) must be > 0"},
		{[]string{"-abnormal-after", "-1s"}, "AbnormalAfter (-1s) must be > 0"},
	} {
		out := startFailing(t, c, "node-invalid", append([]string{"-etcd", c.etcd.Endpoint(), "-root-path", procRootPath}, tc.args...)...)
		require.Contains(t, out, tc.want, "%v", tc.args)
	}

	// node-1 stops while a copy of its record stays in etcd (without a
	// lease): the manager lists it still, but never calls it.
	tl.mark("node-1 stopped, copy stays")
	stopped := n1.stop()
	c.waitAvailable(n2)
	l.waitCalls(t, 200)
	copyListed := false
	for _, s := range c.mgr.Status() {
		if s.Address == n1.addr {
			copyListed = true
			t.Logf("node-1's copied record: the manager holds node %d as %s (%s)", s.NodeID, s.State, s.LastError)
		}
	}

	tl.mark("counter repaired")
	put(t, cli, c.scfg.IDKey(), "100")
	for k := range bad {
		if k != c.scfg.IDKey() {
			del(t, cli, k)
		}
	}
	restart(n1)
	c.waitAvailable(n1, n2)
	require.Equal(t, int64(100), c.registered()[n1.addr], "the next ServerID comes from the repaired counter")
	l.waitCalls(t, 100)
	_, failed := l.stop()
	all := l.snapshot()

	tl.report(t, c, "bad input in etcd", all)
	malformed := len(c.logs.FilterMessage("skipping malformed session value").All())
	t.Logf("every node process still running: %v; manager warnings on malformed values: %d; "+
		"node-1's copy still listed by the manager after its stop: %v; node-1 left routing %s after SIGTERM",
		n2.running(), malformed, copyListed, round(c.left(n1, stopped)))
	require.True(t, n2.running())
	for _, o := range failures(all) {
		require.NotErrorIs(t, o.err, clientmanager.ErrClosed)
	}
	if len(failed) > 0 {
		logFailures(t, c, all, 10)
	}
	require.Empty(t, failed, "failed calls")
}

// startFailing runs a node that must exit with code 1 before it serves,
// and returns its stderr.
func startFailing(t *testing.T, c *cluster, name string, args ...string) string {
	t.Helper()
	p := proctest.Start(t, c.bin, name, args...)
	err := p.WaitExit(procWait)
	require.Error(t, err, "%s %v must fail", name, args)
	return p.Stderr()
}

func getValue(t *testing.T, cli *clientv3.Client, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, key)
	return string(resp.Kvs[0].Value)
}

func put(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := cli.Put(ctx, key, val)
	require.NoError(t, err)
}

func del(t *testing.T, cli *clientv3.Client, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := cli.Delete(ctx, key)
	require.NoError(t, err)
}
