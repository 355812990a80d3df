package clientmanager

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/session"
)

// seriesOf counts the series reg holds, in all and those whose node_id
// label is id.
func seriesOf(t *testing.T, reg prometheus.Gatherer, id int64) (all, node int) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	want := strconv.FormatInt(id, 10)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			all++
			for _, l := range m.GetLabel() {
				if l.GetName() == "node_id" && l.GetValue() == want {
					node++
				}
			}
		}
	}
	return all, node
}

// 1,000 nodes join and leave through etcd, one at a time, each called
// once while it is listed: each has its per-node series while it is
// listed, none once it left, and the number of series after each cycle
// is the same as after the first.
func TestNodeSeriesDoNotLeakOverJoinLeaveCycles(t *testing.T) {
	cycles := 1000
	if testing.Short() {
		cycles = 100
	}
	reg := prometheus.NewRegistry()
	dialer := dialerFunc(func(context.Context, session.Session) (Conn, error) { return newFakeConn(), nil })
	e := newEnv(t, nil, WithRegisterer(reg), WithDialer(dialer))
	require.NoError(t, e.m.AddDependency(testRole))
	perNode := len(e.m.metrics.perNode.descs())

	baseline := -1
	for i := range cycles {
		id := int64(i + 1)
		s := e.node(id, "192.0.2.1:"+strconv.Itoa(1000+i%1000))
		e.waitOnline(id)
		require.NoError(t, e.m.Invoke(context.Background(), testRole, func(context.Context, *Client) error { return nil }))
		_, node := seriesOf(t, reg, id)
		require.Equal(t, perNode, node, "cycle %d: the listed node's series", i)

		e.ss.del(s)
		require.Eventually(t, func() bool { return e.state(id) == noState }, testTimeout, time.Millisecond,
			"cycle %d: node %d leaves the registry", i, id)
		all, node := seriesOf(t, reg, id)
		require.Zero(t, node, "cycle %d: series of node %d after it left", i, id)
		if baseline < 0 {
			baseline = all
		}
		require.Equal(t, baseline, all, "cycle %d: series in the registry", i)
	}
	t.Logf("%d join/leave cycles: %d series throughout", cycles, baseline)
}
