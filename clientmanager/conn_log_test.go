package clientmanager

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// refusedAddr returns an address on 127.0.0.1 where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// Each change of a node's state is one line whose cause is in words — a
// refused dial says "connection refused", not the state grpc was left in —
// and no Info or Warn line of a node carries a stack trace (zap.Error of a
// cockroachdb error adds one as errorVerbose).
func TestStateChangeLogsNameTheCause(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	e := newEnv(t, func(c *Config) {
		c.DialAttempts = 1
		c.DialTimeout = 500 * time.Millisecond
	}, WithLogger(zap.New(core)))
	srv := startServer(t)
	e.node(1, refusedAddr(t))
	e.node(2, srv.addr)
	require.NoError(t, e.m.AddDependency(testRole))
	e.waitState(1, NodeUnreachable)
	e.waitOnline(2)
	srv.srv.Stop() // a crash: the reconnect is refused
	e.waitState(2, NodeSuspect)
	require.Eventually(t, func() bool {
		for _, st := range e.m.Status() {
			if st.NodeID == 2 {
				return st.State == NodeSuspect && strings.Contains(st.LastError, "connection refused")
			}
		}
		return false
	}, testTimeout, time.Millisecond, "Status names the refused reconnect")
	require.NoError(t, e.m.Close())

	changes := logs.FilterMessage("node state changed")
	unreachable := stateChanges(changes, 1, NodeUnreachable)
	require.Len(t, unreachable, 1, "one line per state change")
	require.Equal(t, zapcore.WarnLevel, unreachable[0].Level)
	require.Contains(t, unreachable[0].ContextMap()["cause"], "connection refused")
	suspect := stateChanges(changes, 2, NodeSuspect)
	require.Len(t, suspect, 1, "one line per state change")
	require.NotEmpty(t, suspect[0].ContextMap()["cause"])

	for _, le := range logs.AllUntimed() {
		if _, node := le.ContextMap()["node_id"]; !node || le.Level < zapcore.InfoLevel {
			continue
		}
		require.NotContains(t, le.ContextMap(), "errorVerbose", "%s %q carries a stack trace", le.Level, le.Message)
	}
}

// stateChanges returns the logged changes of node id's state to to.
func stateChanges(logs *observer.ObservedLogs, id int64, to NodeState) []observer.LoggedEntry {
	return logs.Filter(func(le observer.LoggedEntry) bool {
		m := le.ContextMap()
		return m["node_id"] == id && m["to"] == to.String()
	}).AllUntimed()
}
