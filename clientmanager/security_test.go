package clientmanager

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/security/securitytest"
)

// TestTLSNodeOfAnotherRoleIsNeverOnline runs the manager with Config.TLS:
// a node whose certificate names its role is online and called; a node
// registered under that role with another role's certificate is never
// online and never receives a call.
func TestTLSNodeOfAnotherRoleIsNeverOnline(t *testing.T) {
	ca := securitytest.NewCA(t, "ca")
	mgrTLS, _ := ca.TLS(t, "cm", "querycoord")
	goodTLS, _ := ca.TLS(t, "cm", testRole)
	badTLS, _ := ca.TLS(t, "cm", "datanode")
	good := startServer(t, goodTLS.ServerOptions("querycoord")...)
	bad := startServer(t, badTLS.ServerOptions("querycoord")...)

	e := newEnv(t, func(c *Config) { c.TLS = mgrTLS; c.DialAttempts = 1; c.DialTimeout = 2 * time.Second })
	require.NoError(t, e.m.AddDependency(testRole))
	e.node(1, good.addr)
	e.node(2, bad.addr)

	c := e.waitOnline(1)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, callUnary(ctx, c))
	e.waitState(2, NodeUnreachable)
	var why string
	for _, st := range e.m.Status() {
		if st.NodeID == 2 {
			why = st.LastError
		}
	}
	require.Contains(t, why, "certificate names [localhost datanode.cm spiffe://cm/datanode], want role querynode")
	for range 20 {
		require.NoError(t, e.m.Invoke(ctx, testRole, callUnary))
	}
	require.False(t, e.m.IsOnline(2))
	require.EqualValues(t, 21, good.svc.calls.Load())
	require.Zero(t, bad.svc.calls.Load(), "the node of another role was called")
}

// TestAllowedNetworksRefuseOtherAddresses: a session whose address is a
// host name resolving outside Config.AllowedNetworks is never connected
// to, never online (an IP outside is not even listed: see
// TestAllowedNetworksSkipRecordsBeforeDialing); one inside is.
func TestAllowedNetworksRefuseOtherAddresses(t *testing.T) {
	srv := startServer(t)
	e := newEnv(t, func(c *Config) {
		c.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		c.DialAttempts, c.DialTimeout = 1, time.Second
	})
	require.NoError(t, e.m.AddDependency(testRole))
	_, port, err := net.SplitHostPort(srv.addr)
	require.NoError(t, err)
	e.node(1, net.JoinHostPort("localhost", port))
	e.waitState(1, NodeUnreachable)
	for _, st := range e.m.Status() {
		if st.NodeID == 1 {
			require.Contains(t, st.LastError, "address outside AllowedNetworks")
		}
	}
	require.Zero(t, srv.svc.calls.Load())

	e2 := newEnv(t, func(c *Config) {
		c.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	require.NoError(t, e2.m.AddDependency(testRole))
	e2.node(1, srv.addr)
	e2.waitOnline(1)

	bad := DefaultConfig()
	bad.AllowedNetworks = []netip.Prefix{{}}
	require.ErrorContains(t, bad.Validate(), "AllowedNetworks[0] (invalid Prefix) is not a valid prefix")
}
