package security_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/retry"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/security/securitytest"
	"github.com/coordkit/clientmanager/session"
)

// secureEtcd is an etcd with TLS, client-certificate auth and
// authentication on, laid out as docs/operations.md's Security section
// says: user querynode (role node-querynode) writes its sessions and the
// ServerID counter; user querycoord (role manager) only reads.
type secureEtcd struct {
	ca       *securitytest.CA
	member   *etcdtest.Member
	caFile   string
	sessions session.Config
}

const etcdPassword = "s3cret-pw"

func startSecureEtcd(t *testing.T) *secureEtcd {
	t.Helper()
	ca := securitytest.NewCA(t, "etcd-ca")
	srv := securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{CommonName: "etcd"}), ca)
	m := etcdtest.StartSecure(t, etcdtest.SecureConfig{CertFile: srv.Cert, KeyFile: srv.Key, CAFile: srv.CA, ClientCertAuth: true})
	e := &secureEtcd{ca: ca, member: m, caFile: srv.CA, sessions: session.DefaultConfig()}

	root := e.client(t, e.certConfig(t, "root"))
	etcdtest.EnableAuth(t, root, "root-pw")
	ctx, cancel := context.WithTimeout(context.Background(), etcdtest.DefaultTestTimeout)
	defer cancel()
	prefix := e.sessions.Prefix() + "/"
	steps := []func() error{
		func() error { _, err := root.RoleAdd(ctx, "manager"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "manager", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := root.RoleAdd(ctx, "node-querynode"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "node-querynode", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error {
			k := e.sessions.RolePrefix("querynode")
			_, err := root.RoleGrantPermission(ctx, "node-querynode", k, clientv3.GetPrefixRangeEnd(k), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error {
			_, err := root.RoleGrantPermission(ctx, "node-querynode", e.sessions.IDKey(), "", clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := root.UserAdd(ctx, "querynode", etcdPassword); return err },
		func() error { _, err := root.UserGrantRole(ctx, "querynode", "node-querynode"); return err },
		func() error { _, err := root.UserAdd(ctx, "querycoord", etcdPassword); return err },
		func() error { _, err := root.UserGrantRole(ctx, "querycoord", "manager"); return err },
	}
	for i, step := range steps {
		require.NoError(t, step(), "etcd layout step %d", i)
	}
	return e
}

// certConfig authenticates with a client certificate whose CN is user.
func (e *secureEtcd) certConfig(t *testing.T, user string) security.EtcdConfig {
	t.Helper()
	f := securitytest.Write(t, e.ca.Issue(t, securitytest.LeafOptions{CommonName: user}), e.ca)
	return security.EtcdConfig{Endpoints: []string{e.member.Endpoint()}, CAFile: e.caFile, CertFile: f.Cert, KeyFile: f.Key}
}

// passwordConfig authenticates as user with password, over TLS with a
// client certificate of no user (the server requires one).
func (e *secureEtcd) passwordConfig(t *testing.T, user, password string) security.EtcdConfig {
	t.Helper()
	c := e.certConfig(t, "")
	c.Username = user
	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte(password+"\n"), 0o600))
	c.PasswordFile = pw
	return c
}

func (e *secureEtcd) client(t *testing.T, c security.EtcdConfig) *clientv3.Client {
	t.Helper()
	cli, err := e.newClient(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func (e *secureEtcd) newClient(c security.EtcdConfig) (*clientv3.Client, error) {
	return security.NewEtcdClient(c, zap.NewNop(), session.EtcdDialOptions()...)
}

func (e *secureEtcd) register(t *testing.T, cli *clientv3.Client, role string) (*session.Registration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), etcdtest.DefaultTestTimeout)
	defer cancel()
	reg, err := session.Register(ctx, cli, session.Session{ServerName: role, Address: "127.0.0.1:1", Version: "2.4.0"}, e.sessions)
	if reg != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), etcdtest.DefaultTestTimeout)
			defer cancel()
			_ = reg.Close(ctx)
		})
	}
	return reg, err
}

// discovers asserts that a read-only manager client lists and watches reg.
func (e *secureEtcd) discovers(t *testing.T, mgr *clientv3.Client, reg *session.Registration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), etcdtest.DefaultTestTimeout)
	defer cancel()
	require.NoError(t, session.CheckEtcdAccess(ctx, mgr, e.sessions))
	list, _, err := session.List(ctx, mgr, e.sessions, "querynode")
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, reg.Session().ServerID, list[0].ServerID)

	w, err := session.NewWatcher(mgr, e.sessions, session.DefaultWatchConfig("querynode"))
	require.NoError(t, err)
	defer func() { _ = w.Close() }()
	ev := <-w.Subscribe(ctx)
	require.Equal(t, session.EventAdd, ev.Type)
	require.Equal(t, reg.Session().ServerID, ev.Session.ServerID)

	_, err = mgr.Put(ctx, e.sessions.Key("querynode", 99), "{}")
	require.True(t, session.IsEtcdAuthError(err), "a manager must not write: %v", err)
}

func TestEtcdClientCertAuthRegistersAndWatches(t *testing.T) {
	e := startSecureEtcd(t)
	reg, err := e.register(t, e.client(t, e.certConfig(t, "querynode")), "querynode")
	require.NoError(t, err)
	e.discovers(t, e.client(t, e.certConfig(t, "querycoord")), reg)
}

func TestEtcdPasswordAuthRegistersAndWatches(t *testing.T) {
	e := startSecureEtcd(t)
	reg, err := e.register(t, e.client(t, e.passwordConfig(t, "querynode", etcdPassword)), "querynode")
	require.NoError(t, err)
	e.discovers(t, e.client(t, e.passwordConfig(t, "querycoord", etcdPassword)), reg)
}

func TestEtcdRejectedCredentialsFailClearlyAndFast(t *testing.T) {
	e := startSecureEtcd(t)
	t.Run("wrong password", func(t *testing.T) {
		cli, err := e.newClient(e.passwordConfig(t, "querynode", "Bad-Pw-9f3"))
		if err == nil {
			defer func() { _ = cli.Close() }()
			_, err = e.register(t, cli, "querynode")
			requireOneAttempt(t, err)
		}
		// Else refused when the client authenticates: no retry there.
		require.Error(t, err)
		t.Log(err)
		require.True(t, session.IsEtcdAuthError(err), "%v", err)
		require.Contains(t, err.Error(), "authentication failed")
		require.NotContains(t, err.Error(), "Bad-Pw-9f3", "the password is never shown")
	})
	t.Run("no write permission on the role prefix", func(t *testing.T) {
		cli := e.client(t, e.passwordConfig(t, "querynode", etcdPassword))
		_, err := e.register(t, cli, "datanode")
		require.Error(t, err)
		t.Log(err)
		require.True(t, session.IsEtcdAuthError(err), "%v", err)
		require.Contains(t, err.Error(), "permission denied")
		requireOneAttempt(t, err)
	})
	t.Run("read-only manager cannot register", func(t *testing.T) {
		cli := e.client(t, e.certConfig(t, "querycoord"))
		_, err := e.register(t, cli, "querynode")
		require.True(t, session.IsEtcdAuthError(err), "%v", err)
		require.Contains(t, err.Error(), "ServerID")
	})
	t.Run("user without roles", func(t *testing.T) {
		cli := e.client(t, e.certConfig(t, "nobody"))
		ctx, cancel := context.WithTimeout(context.Background(), etcdtest.DefaultTestTimeout)
		defer cancel()
		err := session.CheckEtcdAccess(ctx, cli, e.sessions)
		require.True(t, session.IsEtcdAuthError(err), "%v", err)
		require.ErrorContains(t, err, "rejected the credentials reading by-dev/meta/session/")
		require.False(t, errors.Is(err, context.DeadlineExceeded))
	})
}

func TestEtcdConfigStringHidesPassword(t *testing.T) {
	c := security.EtcdConfig{Endpoints: []string{"a:2379"}, Username: "u", Password: etcdPassword, CAFile: "ca.pem"}
	require.NotContains(t, c.String(), etcdPassword)
	require.Equal(t, "etcd a:2379 tls user=u", c.String())
	require.ErrorContains(t, security.EtcdConfig{Endpoints: []string{"a"}, Password: "x"}.Validate(), "needs Username")
}

// requireOneAttempt asserts that err, of a registration, ended its first
// attempt: credentials etcd refuses are not retried.
func requireOneAttempt(t *testing.T, err error) {
	t.Helper()
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, 1, re.Attempts, "not retried: %v", err)
}
