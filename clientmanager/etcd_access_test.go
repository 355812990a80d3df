package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/security/securitytest"
	"github.com/coordkit/clientmanager/session"
)

// TestWaitForRoleReportsEtcdRefusal: a manager whose etcd user may not
// read the sessions does not wait silently: WaitForRole returns, before
// its context ends, an error naming etcd and the cause; once the
// permission is granted the same manager discovers and connects the role.
func TestWaitForRoleReportsEtcdRefusal(t *testing.T) {
	ca := securitytest.NewCA(t, "etcd-ca")
	srvCert := securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{CommonName: "etcd"}), ca)
	member := etcdtest.StartSecure(t, etcdtest.SecureConfig{CertFile: srvCert.Cert, KeyFile: srvCert.Key, CAFile: srvCert.CA})
	clientCert := securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{}), ca) // of no user
	client := func(user, password string) *clientv3.Client {
		cli, err := security.NewEtcdClient(security.EtcdConfig{Endpoints: []string{member.Endpoint()}, CAFile: srvCert.CA,
			CertFile: clientCert.Cert, KeyFile: clientCert.Key, Username: user, Password: password}, zap.NewNop())
		require.NoError(t, err)
		t.Cleanup(func() { _ = cli.Close() })
		return cli
	}
	etcdtest.EnableAuth(t, client("", ""), "root-pw")
	root := client("root", "root-pw")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := root.RoleAdd(ctx, "cm-manager")
	require.NoError(t, err)
	_, err = root.UserAdd(ctx, "querycoord", "pw")
	require.NoError(t, err)
	_, err = root.UserGrantRole(ctx, "querycoord", "cm-manager")
	require.NoError(t, err)

	m, err := New(client("querycoord", "pw"), testConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	require.NoError(t, m.AddDependency(testRole))
	err = m.WaitForRole(ctx, testRole, 1)
	require.Error(t, err)
	require.False(t, errors.Is(err, context.DeadlineExceeded), "returned on the refusal, not the deadline: %v", err)
	require.True(t, session.IsEtcdAuthError(err), "%v", err)
	require.ErrorContains(t, err, `clientmanager: role "querynode": session: etcd [`+member.Endpoint()+`] refused`)
	require.ErrorContains(t, err, "permission denied")
	// Asked again while refused, it fails at once.
	require.ErrorContains(t, m.WaitForRole(ctx, testRole, 1), "permission denied")

	// The permission granted, the watcher reads the sessions on its own.
	prefix := session.DefaultConfig().Prefix() + "/"
	_, err = root.RoleGrantPermission(ctx, "cm-manager", prefix, clientv3.GetPrefixRangeEnd(prefix),
		clientv3.PermissionType(clientv3.PermRead))
	require.NoError(t, err)
	srv := startServer(t)
	newSessions(t, root).put(session.Session{ServerID: 1, ServerName: testRole, Address: srv.addr, Version: "2.4.0"})
	// WaitForRole reports the refusal until the watcher's next list (with
	// backoff) succeeds.
	require.Eventually(t, func() bool { return m.WaitForRole(ctx, testRole, 1) == nil }, testTimeout, 10*time.Millisecond)
}
