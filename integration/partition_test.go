//go:build integration

package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/coordkit/clientmanager/clientmanager"
)

// TestProcEtcdPartition cuts one node's link to etcd (a black hole: its
// connections stay open, nothing passes) while the manager calls three
// nodes. Only that node's session goes, once its lease expires; the node
// keeps serving calls made to it directly until AbnormalAfter has passed
// without a session, then refuses them (Abnormal); no call through the
// manager fails. Healed, the node registers again under the same ServerID,
// is Healthy again and back in the manager's available set.
func TestProcEtcdPartition(t *testing.T) {
	const abnormalAfter = 5 * time.Second
	c := startCluster(t, clusterConfig{bin: "node", role: role, n: 3,
		args: []string{"-abnormal-after", abnormalAfter.String()}})
	c.startAll()
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	c.waitAvailable(n1, n2, n3)
	id := c.registered()[n1.addr]
	direct := dialDirect(t, n1.addr)
	l := c.load(loadCallers, loadPace)
	var tl timeline
	tl.mark("all up")
	l.waitCalls(t, 100)

	cut := tl.mark("node-1 cut from etcd")
	n1.etcd.Cut(t)
	left := c.left(n1, cut)
	c.waitAvailable(n2, n3)
	require.NoError(t, direct.echo(), "node-1 still serves once its session is gone")
	abnormal := n1.expectState("Abnormal")
	require.Equal(t, codes.Unavailable, status.Code(direct.echo()), "node-1 refuses calls once Abnormal")
	l.waitCalls(t, 100)

	heal := tl.mark("healed")
	n1.etcd.Restore(t)
	healthy := n1.expectState("Healthy")
	joined := c.joined(n1, heal)
	c.waitAvailable(n1, n2, n3)
	require.Equal(t, id, c.registered()[n1.addr], "the same ServerID")
	require.NoError(t, direct.echo())
	l.waitCalls(t, 200)
	_, failed := l.stop()
	all := l.snapshot()

	tl.report(t, c, "node↔etcd partition of node-1", all)
	t.Logf("node-1 left the available set %s after the cut (TTL %s), went Abnormal %s after it (AbnormalAfter %s); "+
		"healed: Healthy after %s, available after %s", round(left), procTTL, round(abnormal.At.Sub(cut)), abnormalAfter,
		round(healthy.At.Sub(heal)), round(joined))
	require.Less(t, left, procTTL+3*time.Second, "node-1 leaves within the TTL and a margin")
	require.Greater(t, abnormal.At.Sub(cut), abnormalAfter, "node-1 serves for AbnormalAfter at least")
	require.Less(t, joined, 5*time.Second, "node-1 back within seconds of the heal")
	for _, n := range []*procNode{n2, n3} {
		require.Zero(t, c.events.count(clientmanager.ClientOffline, n.addr, cut), "%s never left", n.name)
	}
	require.Contains(t, answeredBy(c, between(all, heal.Add(joined), time.Time{})), n1.name)
	if len(failed) > 0 {
		logFailures(t, c, all, 10)
	}
	require.Empty(t, failed, "failed calls")
}

// TestProcNodeLinkBlackHole cuts the manager's link to one of three nodes
// (a black hole: the connection stays open, nothing passes) while its
// session stays in etcd: a hung node. Every call through the manager
// still succeeds, those that went to the hung node on another node after
// their attempt's share of the time; the node leaves routing, and is
// called again after the heal.
func TestProcNodeLinkBlackHole(t *testing.T) {
	c := startCluster(t, clusterConfig{bin: "node", role: role, n: 3, links: true})
	c.startAll()
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	c.waitAvailable(n1, n2, n3)
	l := c.load(loadCallers, loadPace)
	var tl timeline
	tl.mark("all up")
	l.waitCalls(t, 100)

	cut := tl.mark("link to node-1 cut")
	n1.link.Cut(t)
	// Calls go on; those sent to node-1 time out and are retried elsewhere.
	l.waitCalls(t, 1000)
	require.Contains(t, c.registered(), n1.addr, "node-1's session stays")
	var st clientmanager.NodeStatus
	for _, s := range c.mgr.Status() {
		if s.Address == n1.addr {
			st = s
		}
	}

	heal := tl.mark("healed")
	n1.link.Restore(t)
	var back time.Time
	require.Eventually(t, func() bool {
		for _, o := range between(l.snapshot(), heal, time.Time{}) {
			if o.err == nil && o.addr == n1.addr {
				back = o.at
				return true
			}
		}
		return false
	}, 2*procWait, 10*time.Millisecond, "node-1 answers again after the heal")
	l.waitCalls(t, 200)
	_, failed := l.stop()
	all := l.snapshot()

	tl.report(t, c, "manager↔node-1 link black-holed", all)
	cutCalls := tl.phase(all, "link to node-1 cut")
	var retried []outcome
	for _, o := range cutCalls {
		if o.attempts > 1 {
			retried = append(retried, o)
		}
	}
	last := cut
	if len(retried) > 0 {
		last = retried[len(retried)-1].start
	}
	t.Logf("while cut: %d calls, %d retried on another node (the last one started %s after the cut); node-1 %s, breaker %s; "+
		"after the heal node-1 answered again after %s", len(cutCalls), len(retried), round(last.Sub(cut)),
		st.State, st.Breaker, round(back.Sub(heal)))
	require.NotContains(t, answeredBy(c, between(all, cut.Add(time.Second), heal)), n1.name, "node-1 answers nothing while cut")
	if len(failed) > 0 {
		logFailures(t, c, all, 10)
	}
	require.Empty(t, failed, "failed calls")
}

// directConn is a plain gRPC connection to one node, without the
// manager and without an identity: what a health probe or a tool sees.
type directConn struct {
	t  *testing.T
	cc *grpc.ClientConn
}

func dialDirect(t *testing.T, addr string) *directConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return &directConn{t: t, cc: cc}
}

// echo calls Echo, bounded by 2 s.
func (d *directConn) echo() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return d.cc.Invoke(ctx, procEcho, wrapperspb.String("direct"), new(wrapperspb.StringValue))
}
