package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/security/securitytest"
	"github.com/coordkit/clientmanager/session"
)

// TestSessionsWithEtcdCredentials lists sessions of an etcd with TLS and
// authentication as a read-only user (password from the environment),
// and names etcd and the cause when the password is wrong or the user may
// not read.
func TestSessionsWithEtcdCredentials(t *testing.T) {
	ca := securitytest.NewCA(t, "ca")
	files := securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{CommonName: "root"}), ca)
	m := etcdtest.StartSecure(t, etcdtest.SecureConfig{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA})
	admin, err := security.NewEtcdClient(security.EtcdConfig{Endpoints: []string{m.Endpoint()}, CAFile: files.CA,
		CertFile: files.Cert, KeyFile: files.Key}, zap.NewNop())
	require.NoError(t, err)
	defer func() { _ = admin.Close() }()
	ctx := testContext(t)
	s := session.Session{ServerID: 7, ServerName: "querynode", Address: "127.0.0.1:21125", Version: "2.4.0"}
	b, err := s.Encode()
	require.NoError(t, err)
	_, err = admin.Put(ctx, session.DefaultConfig().Key("querynode", 7), string(b))
	require.NoError(t, err)
	prefix := session.DefaultConfig().Prefix() + "/"
	_, err = admin.RoleAdd(ctx, "cm-manager")
	require.NoError(t, err)
	_, err = admin.RoleGrantPermission(ctx, "cm-manager", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermRead))
	require.NoError(t, err)
	for _, u := range []string{"reader", "nobody"} {
		_, err = admin.UserAdd(ctx, u, "pw-"+u)
		require.NoError(t, err)
	}
	_, err = admin.UserGrantRole(ctx, "reader", "cm-manager")
	require.NoError(t, err)
	etcdtest.EnableAuth(t, admin, "root-pw")

	// etcd with a trusted CA asks every client for a certificate; the user
	// name given wins over its Common Name.
	anon := securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{}), ca)
	tlsArgs := []string{"-etcd", m.Endpoint(), "-etcd-ca", files.CA, "-etcd-cert", anon.Cert, "-etcd-key", anon.Key}
	run := func(user, password string) (string, error) {
		t.Setenv(security.EtcdPasswordEnv, password)
		var out, errOut bytes.Buffer
		err := cmdSessions(context.Background(), append(tlsArgs, "-etcd-user", user), &out, &errOut)
		return out.String(), err
	}
	out, err := run("reader", "pw-reader")
	require.NoError(t, err)
	require.Contains(t, out, "127.0.0.1:21125")

	_, err = run("reader", "Wrong-Pw-88")
	require.ErrorContains(t, err, "etcd "+m.Endpoint()+" tls cert="+anon.Cert+" user=reader")
	require.ErrorContains(t, err, "authentication failed")
	require.NotContains(t, err.Error(), "Wrong-Pw-88")

	_, err = run("nobody", "pw-nobody")
	require.ErrorContains(t, err, "rejected the credentials reading by-dev/meta/session/")
	require.ErrorContains(t, err, "permission denied")

	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("pw-reader\n"), 0o600))
	var stdout bytes.Buffer
	require.NoError(t, cmdSessions(context.Background(), append(tlsArgs,
		"-etcd-user", "reader", "-etcd-password-file", pw), &stdout, &bytes.Buffer{}))
	require.Contains(t, stdout.String(), "127.0.0.1:21125")
}
