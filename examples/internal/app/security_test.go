package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/security/securitytest"
)

// TestCoordinatorAndNodeOverMutualTLSAndAuthenticatedEtcd runs the
// examples with every security flag: etcd over TLS with a client
// certificate and a password from a file, gRPC mutual TLS, and a node that
// takes calls only from the coordinator's role.
func TestCoordinatorAndNodeOverMutualTLSAndAuthenticatedEtcd(t *testing.T) {
	ca := securitytest.NewCA(t, "ca")
	etcdFiles := securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{CommonName: "root"}), ca)
	m := etcdtest.StartSecure(t, etcdtest.SecureConfig{CertFile: etcdFiles.Cert, KeyFile: etcdFiles.Key, CAFile: etcdFiles.CA, ClientCertAuth: true})
	const rootPW = "root-pw-7d1"
	admin, err := security.NewEtcdClient(security.EtcdConfig{Endpoints: []string{m.Endpoint()},
		CAFile: etcdFiles.CA, CertFile: etcdFiles.Cert, KeyFile: etcdFiles.Key}, zap.NewNop())
	require.NoError(t, err)
	defer func() { _ = admin.Close() }()
	etcdtest.EnableAuth(t, admin, rootPW)
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(rootPW), 0o600))

	etcdArgs := []string{"-etcd", m.Endpoint(), "-root-path", "apptest/meta", "-ttl", "2s",
		"-etcd-ca", etcdFiles.CA, "-etcd-cert", etcdFiles.Cert, "-etcd-key", etcdFiles.Key, "-etcd-user", "root"}
	tlsArgs := func(role string) []string {
		f := securitytest.Write(t, ca.Role(t, security.DefaultConfig().Cluster, role), ca)
		return []string{"-tls-ca", f.CA, "-tls-cert", f.Cert, "-tls-key", f.Key}
	}
	common := append(etcdArgs, "-etcd-password-file", pwFile)
	node := startProcess(t, "node", NodeDefaults, append(append(common, tlsArgs("querynode")...),
		"-depends", "rootcoord", "-tls-allow-callers", "rootcoord")...)
	coord := startProcess(t, "coordinator", CoordinatorDefaults, append(append(common, tlsArgs("rootcoord")...),
		"-depends", "querynode", "-call-interval", "100ms")...)
	require.Eventually(t, func() bool { return node.out.has("state Healthy ") && coord.out.has("state Healthy ") },
		testTimeout, 10*time.Millisecond, "both Healthy")
	require.Eventually(t, func() bool { return coord.logs.FilterMessage("call answered").Len() > 0 },
		testTimeout, 10*time.Millisecond, "the coordinator calls the node over mutual TLS")

	t.Run("wrong password", func(t *testing.T) {
		t.Setenv(security.EtcdPasswordEnv, "Wrong-Pw-41")
		f, err := parse("node", append(etcdArgs, "-role", "datanode"), NodeDefaults, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		err = run(ctx, context.Background(), f, NodeDefaults, zap.NewNop(), &output{})
		require.ErrorContains(t, err, "authentication failed")
		require.ErrorContains(t, err, "etcd "+m.Endpoint())
		require.NotContains(t, err.Error(), "Wrong-Pw-41")
	})
}
