package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/session"
)

// putActive writes s as the active process of its exclusive role, under
// its lease, as a takeover does: the same record under <role>.
func (k *sessions) putActive(s session.Session) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	b, err := s.Encode()
	require.NoError(k.t, err)
	_, err = k.cli.Put(ctx, k.cfg.ActiveKey(s.ServerName), string(b), clientv3.WithLease(clientv3.LeaseID(s.LeaseID)))
	require.NoError(k.t, err)
}

// The standby of an exclusive role is registered and serves gRPC, but its
// health says NOT_SERVING. It is connected, not serving: its dial returns
// as soon as the connection is READY (the only dial slot is free for the
// active process), the node is suspect and is neither redialed nor
// re-probed. When the active process dies and the standby takes over — the
// same record under the active key, which the watcher does not report —
// the first call is served by the new active as soon as its health says
// SERVING.
func TestStandbyTakeoverServedOnceHealthSaysServing(t *testing.T) {
	t.Parallel()
	const role = "rootcoord"
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *Config) { c.MaxParallelDials = 1 }, WithRegisterer(reg))
	active, standby := startServer(t), startServer(t)
	standby.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	sa := e.ss.put(session.Session{ServerID: 6, ServerName: role, Address: active.addr, Exclusive: true, Version: "2.4.0"})
	e.ss.putActive(sa)
	ss := e.ss.put(session.Session{ServerID: 5, ServerName: role, Address: standby.addr, Exclusive: true, Version: "2.4.0"})
	require.NoError(t, e.m.AddDependency(role))

	e.waitState(5, NodeSuspect)
	e.waitOnline(6)
	require.Empty(t, e.m.dialSem, "no dial slot held")
	for _, st := range e.m.Status() {
		if st.NodeID == 5 {
			require.Contains(t, st.LastError, "NOT_SERVING")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, e.m.Invoke(ctx, role, callUnary))
	require.Zero(t, standby.svc.calls.Load(), "the standby got a call")

	// Takeover: the active process is gone, the standby holds the active
	// key and starts serving.
	e.ss.del(sa)
	_, err := e.cli.Delete(ctx, e.ss.cfg.ActiveKey(role))
	require.NoError(t, err)
	e.waitState(6, noState)
	e.ss.putActive(ss)
	start := time.Now()
	standby.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	require.Eventually(t, func() bool { return e.m.Invoke(ctx, role, callUnary) == nil }, testTimeout, 100*time.Microsecond)
	took := time.Since(start)
	t.Logf("standby takeover: first call served %s after it started serving", took)
	require.Equal(t, int64(1), standby.svc.calls.Load())
	require.Less(t, took, time.Second)

	require.Equal(t, 2.0, metricValue(t, e.m.metrics.dials.WithLabelValues(role, "ok")), "one dial each, no redial")
	require.Equal(t, 0.0, metricValue(t, e.m.metrics.dials.WithLabelValues(role, "error")))
}
