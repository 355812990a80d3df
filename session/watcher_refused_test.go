package session

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/security/securitytest"
)

// authEtcd is an embedded etcd over TLS (it requires a client certificate
// of its CA) with authentication on: user root
// (password rootPW) and the users the test adds.
type authEtcd struct {
	t      *testing.T
	member *etcdtest.Member
	caFile string
	cert   securitytest.Files // a client certificate of no user
	root   *clientv3.Client
}

const rootPW = "root-pw"

func startAuthEtcd(t *testing.T) *authEtcd {
	t.Helper()
	ca := securitytest.NewCA(t, "etcd-ca")
	srv := securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{CommonName: "etcd"}), ca)
	m := etcdtest.StartSecure(t, etcdtest.SecureConfig{CertFile: srv.Cert, KeyFile: srv.Key, CAFile: srv.CA})
	e := &authEtcd{t: t, member: m, caFile: srv.CA,
		cert: securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{}), ca)}
	etcdtest.EnableAuth(t, e.client(""), rootPW)
	e.root = e.client("root", rootPW)
	return e
}

// client returns a client of user (none when ""), closed by Cleanup.
func (e *authEtcd) client(user string, password ...string) *clientv3.Client {
	e.t.Helper()
	c := security.EtcdConfig{Endpoints: []string{e.member.Endpoint()}, CAFile: e.caFile,
		CertFile: e.cert.Cert, KeyFile: e.cert.Key, Username: user}
	if len(password) > 0 {
		c.Password = password[0]
	}
	cli, err := security.NewEtcdClient(c, zap.NewNop(), EtcdDialOptions()...)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// do runs one administrative request as root.
func (e *authEtcd) do(f func(ctx context.Context, cli *clientv3.Client) error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(e.t, f(ctx, e.root))
}

// user adds user with password and a role of its own, without permission.
func (e *authEtcd) user(user, password string) {
	e.do(func(ctx context.Context, cli *clientv3.Client) error {
		if _, err := cli.RoleAdd(ctx, "r-"+user); err != nil {
			return err
		}
		if _, err := cli.UserAdd(ctx, user, password); err != nil {
			return err
		}
		_, err := cli.UserGrantRole(ctx, user, "r-"+user)
		return err
	})
}

// grantRead lets user read every key under prefix.
func (e *authEtcd) grantRead(user, prefix string) {
	e.do(func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.RoleGrantPermission(ctx, "r-"+user, prefix, clientv3.GetPrefixRangeEnd(prefix),
			clientv3.PermissionType(clientv3.PermRead))
		return err
	})
}

// refusedWithin waits until w reports a refusal and returns it.
func refusedWithin(t *testing.T, w *Watcher) error {
	t.Helper()
	select {
	case <-w.Refused():
	case <-time.After(waitFor):
		t.Fatalf("the watcher reports no refusal within %s", waitFor)
	}
	return w.Err()
}

// A watcher whose user may not read the role's prefix does not retry
// silently: Err names etcd, the prefix and the cause, Refused is closed,
// one error is logged however many lists are refused, and Synced stays
// open. Once the permission is granted the watcher syncs on its own, Err
// is nil again and Refused is a new, open channel.
func TestWatcherReportsPermissionDenied(t *testing.T) {
	e := startAuthEtcd(t)
	cfg := testConfig(t)
	e.user("mgr", "mgr-pw")
	e.grantRead("mgr", cfg.Prefix()+"/other/") // a permission, not on the sessions
	s := rec("querynode", 1)
	putSession(t, e.root, cfg, s)

	core, logs := observer.New(zapcore.InfoLevel)
	w := newWatcher(t, e.client("mgr", "mgr-pw"), cfg, fastWatchConfig("querynode"), WithLogger(zap.New(core)))
	err := refusedWithin(t, w)
	require.True(t, IsEtcdAuthError(err), "%v", err)
	require.ErrorContains(t, err, "session: etcd ["+e.member.Endpoint()+"] refused the credentials of the watcher of role \"querynode\" reading "+cfg.RolePrefix("querynode"))
	require.ErrorContains(t, err, "permission denied")
	select {
	case <-w.Synced():
		t.Fatal("synced without read permission")
	default:
	}
	// The refusal is logged at error level, with etcd and the cause.
	require.Eventually(t, func() bool { return logs.FilterLevelExact(zapcore.ErrorLevel).Len() == 1 }, waitFor, time.Millisecond)
	entry := logs.FilterLevelExact(zapcore.ErrorLevel).All()[0]
	require.Equal(t, []any{e.member.Endpoint()}, entry.ContextMap()["etcd"])
	require.Contains(t, entry.ContextMap()["error"], "permission denied")

	e.grantRead("mgr", cfg.Prefix()+"/")
	select {
	case <-w.Synced():
	case <-time.After(waitFor):
		t.Fatalf("not synced within %s of the grant", waitFor)
	}
	require.NoError(t, w.Err())
	require.Equal(t, []Session{s}, w.Sessions())
	select {
	case <-w.Refused():
		t.Fatal("Refused closed after the credentials were accepted")
	default:
	}
	require.Equal(t, 1, logs.FilterLevelExact(zapcore.ErrorLevel).Len(), "one error log for one refusal")
	require.Equal(t, 1, logs.FilterMessage("etcd accepts the session watcher's credentials again").Len())
}

// A watcher whose client's password no longer works (changed in etcd
// after the client authenticated) reports etcd's authentication failure,
// and recovers when the password works again.
func TestWatcherReportsAuthenticationFailure(t *testing.T) {
	e := startAuthEtcd(t)
	cfg := testConfig(t)
	e.user("mgr", "mgr-pw")
	e.grantRead("mgr", cfg.Prefix()+"/")
	cli := e.client("mgr", "mgr-pw") // authenticated now
	setPassword := func(pw string) {
		e.do(func(ctx context.Context, root *clientv3.Client) error {
			_, err := root.UserChangePassword(ctx, "mgr", pw)
			return err
		})
	}
	setPassword("changed-pw")

	w := newWatcher(t, cli, cfg, fastWatchConfig("querynode"))
	err := refusedWithin(t, w)
	require.True(t, IsEtcdAuthError(err), "%v", err)
	require.ErrorContains(t, err, e.member.Endpoint())
	require.ErrorContains(t, err, "authentication failed")

	setPassword("mgr-pw")
	select {
	case <-w.Synced():
	case <-time.After(waitFor):
		t.Fatalf("not synced within %s of the password's return", waitFor)
	}
	require.NoError(t, w.Err())
}
