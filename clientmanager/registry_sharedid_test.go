package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/session"
)

// One process may serve several roles under one ServerID (Milvus
// processes reuse a node ID across components). Each role keeps its own
// node: GetClient, Invoke, Status and RoleHealth of a role see that role's
// Client, and one role's node leaving leaves the other's in place.
// IsOnline and ClientByID answer for any available one.
func TestOneServerIDInTwoRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	srv := map[string]*testServer{"querynode": startServer(t), "datanode": startServer(t)}
	ss := map[string]session.Session{}
	for role, s := range srv {
		ss[role] = e.ss.put(session.Session{ServerID: 5, ServerName: role, Address: s.addr, Version: "2.4.0"})
		require.NoError(t, e.m.AddDependency(role))
	}
	require.Eventually(t, func() bool {
		return len(e.m.GetClients("querynode")) == 1 && len(e.m.GetClients("datanode")) == 1
	}, testTimeout, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for role, s := range srv {
		for range 50 {
			c, err := e.m.GetClient(role)
			require.NoError(t, err)
			require.Equal(t, role, c.Role(), "GetClient(%q) answered with another role's Client", role)
		}
		require.Equal(t, role, e.m.GetClients(role)[0].Role())
		require.NoError(t, e.m.Invoke(ctx, role, callUnary))
		require.Equal(t, int64(1), s.svc.calls.Load(), "%s's call went to its server", role)
	}
	st := e.m.Status()
	require.Len(t, st, 2)
	require.Equal(t, []string{"datanode", "querynode"}, []string{st[0].Role, st[1].Role})
	require.Len(t, e.m.reg.roleMembers(nil, "querynode"), 1)

	q := e.m.GetClients("querynode")[0]
	forceOpen(t, q)
	require.NotEqual(t, Healthy, e.m.RoleHealth("querynode").Health, "open breaker invisible to RoleHealth")
	require.Equal(t, Healthy, e.m.RoleHealth("datanode").Health)

	require.True(t, e.m.IsOnline(5))
	e.ss.del(ss["datanode"])
	require.Eventually(t, func() bool { return len(e.m.GetClients("datanode")) == 0 }, testTimeout, time.Millisecond)
	require.True(t, e.m.IsOnline(5), "querynode 5 is still online")
	c, err := e.m.ClientByID(5)
	require.NoError(t, err)
	require.Same(t, q, c)
	require.Len(t, e.m.Status(), 1)
	require.Same(t, q, e.m.GetClients("querynode")[0])
}
