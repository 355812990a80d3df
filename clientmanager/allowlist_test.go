package clientmanager

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// listed reports whether the manager lists node id (any state).
func (e *env) listed(id int64) bool {
	for _, s := range e.m.Status() {
		if s.NodeID == id {
			return true
		}
	}
	return false
}

// TestAllowedNetworksSkipRecordsBeforeDialing: with AllowedNetworks set, a
// record whose address is an IP outside them (or not host:port) is
// skipped by the manager before any dial: never listed, never online,
// counted once per process and address in
// clientmanager_sessions_rejected_total, and logged with the address and
// the networks. A listed node whose record moves outside is dropped; a
// process that leaves and comes back is counted again.
func TestAllowedNetworksSkipRecordsBeforeDialing(t *testing.T) {
	srv := startServer(t)
	reg := prometheus.NewRegistry()
	core, logs := observer.New(zapcore.InfoLevel)
	e := newEnv(t, func(c *Config) {
		c.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	}, WithRegisterer(reg), WithLogger(zap.New(core)))
	require.NoError(t, e.m.AddDependency(testRole))
	rejected := func(reason string) float64 {
		return testutil.ToFloat64(e.m.metrics.sessionsRejected.vec.WithLabelValues(testRole, reason))
	}
	dialsOf := func() float64 {
		return testutil.ToFloat64(e.m.metrics.dials.vec.WithLabelValues(testRole, "ok")) +
			testutil.ToFloat64(e.m.metrics.dials.vec.WithLabelValues(testRole, "error"))
	}

	// The role's events are handled in order: once node 9, written last,
	// is online, the records written before it were handled.
	outside := e.node(2, "10.1.2.3:19530")
	e.node(3, "no-port")
	e.node(4, "[::ffff:10.0.0.1]:19530") // an IPv4-mapped address outside
	e.ss.put(outside)                    // the same record again: not counted twice
	e.node(9, srv.addr)
	e.waitOnline(9)
	for _, id := range []int64{2, 3, 4} {
		require.False(t, e.listed(id), "node %d is listed", id)
		require.False(t, e.m.IsOnline(id))
	}
	require.Equal(t, 2.0, rejected(rejectOutsideNetworks))
	require.Equal(t, 1.0, rejected(rejectMalformedAddress))
	require.Equal(t, 1.0, dialsOf(), "only node 9 was dialed")
	warns := logs.FilterMessageSnippet("outside AllowedNetworks").All()
	require.Len(t, warns, 3)
	f := warns[0].ContextMap()
	require.Equal(t, "10.1.2.3:19530", f["address"])
	require.Equal(t, int64(2), f["node_id"])
	require.Equal(t, []any{"127.0.0.0/8", "fd00::/8"}, f["allowed_networks"])
	require.Equal(t, testRole, f["role"])

	// A listed node whose record moves outside is dropped.
	moved := e.node(9, "192.0.2.1:19530")
	e.ss.put(moved)
	require.Eventually(t, func() bool { return !e.listed(9) }, testTimeout, time.Millisecond, "node 9 dropped")
	require.Equal(t, 3.0, rejected(rejectOutsideNetworks))

	// Gone and back at the same address: a new record, counted again.
	e.ss.del(outside)
	e.node(2, outside.Address)
	e.node(10, srv.addr)
	e.waitOnline(10)
	require.False(t, e.listed(2))
	require.Equal(t, 4.0, rejected(rejectOutsideNetworks))
	require.Len(t, logs.FilterMessageSnippet("outside AllowedNetworks").All(), 5)
}

// addressReason checks IP literals, leaves host names to the dialer and
// refuses what is not host:port.
func TestAddressReason(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for addr, want := range map[string]string{
		"10.9.8.7:1":                  "",
		"[2001:db8::1]:1":             "",
		"[::ffff:10.1.1.1]:1":         "",
		"node.example:1":              "",
		"11.0.0.1:1":                  rejectOutsideNetworks,
		"[2001:db9::1]:1":             rejectOutsideNetworks,
		"10.0.0.1":                    rejectMalformedAddress,
		"":                            rejectMalformedAddress,
		strings.Repeat("a", 10) + ":": "",
	} {
		require.Equal(t, want, addressReason(nets, addr), addr)
	}
}
