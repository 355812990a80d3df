//go:build integration

package integration

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/security/securitytest"
	"github.com/coordkit/clientmanager/session"
)

// TestProcFailoverSecure is TestProcFailover's SIGKILL scenario with
// security on, as docs/operations.md's Security section lays it out: the
// manager and the node processes speak mutual TLS with certificates that
// name their roles (the nodes accept only callers of role querycoord),
// and etcd serves over TLS, requires client certificates and has
// authentication on, with the least-privilege layout: each node process
// authenticates with a certificate whose Common Name is its etcd user
// (read the sessions, write only its role's keys and the ServerID
// counter), the manager with a user and password that may only read. The
// invariants are the plain scenario's: no failed call while one node is
// up, fast failure while both are down, calls again soon after they are
// back. It runs with ETCD=system too (Debian's etcd with the same flags).
func TestProcFailoverSecure(t *testing.T) {
	w := waysDown[1]
	require.Equal(t, "SIGKILL", w.name)
	failoverOf(t, w, clusterConfig{bin: "node", role: role, n: 2, secure: true},
		func(c *cluster) { c.sec.checkSecure(c) })
}

// The roles of the secure scenarios' certificates and etcd users.
const (
	secureCluster    = "cm"
	secureCaller     = "querycoord" // the test's manager
	secureRootPW     = "root-pw"
	secureManagerPW  = "querycoord-pw"
	secureEtcdPrefix = procRootPath + "/session"
)

// secureSetup is the security of a secure cluster: the gRPC CA and the
// certificates of each side, etcd (TLS, client certificates, auth) and
// its users.
type secureSetup struct {
	t        *testing.T
	role     string
	etcd     etcdServer
	etcdCA   *securitytest.CA
	etcdCAF  string             // etcd's CA file
	anon     securitytest.Files // a client certificate of no etcd user
	root     *clientv3.Client
	nodeArgs []string // the -tls-* and -etcd-* flags of every node process
	mgrTLS   *security.TLS
}

// startSecure starts etcd over TLS with client-certificate and password
// authentication, creates the users and roles of docs/operations.md for
// role, and writes the certificates of the nodes and the manager.
func startSecure(t *testing.T, role string) *secureSetup {
	t.Helper()
	s := &secureSetup{t: t, role: role, etcdCA: securitytest.NewCA(t, "etcd-ca")}
	srv := securitytest.Write(t, s.etcdCA.Issue(t, securitytest.LeafOptions{CommonName: "etcd"}), s.etcdCA)
	s.etcdCAF = srv.CA
	s.anon = securitytest.Write(t, s.etcdCA.Issue(t, securitytest.LeafOptions{}), s.etcdCA)
	switch e := os.Getenv("ETCD"); e {
	case "", "embedded":
		s.etcd = secureMember{etcdtest.StartSecure(t, etcdtest.SecureConfig{
			CertFile: srv.Cert, KeyFile: srv.Key, CAFile: srv.CA, ClientCertAuth: true})}
	case "system":
		s.etcd = startSecureSystemEtcd(t, srv, s)
	default:
		t.Fatalf("ETCD (%q) must be embedded or system", e)
	}
	etcdtest.EnableAuth(t, s.etcdClient(security.EtcdConfig{}), secureRootPW)
	s.root = s.etcdClient(security.EtcdConfig{Username: "root", Password: secureRootPW})
	s.layout()

	// gRPC: the nodes' certificate names role, the manager's the caller's.
	ca := securitytest.NewCA(t, "cm-ca")
	node := securitytest.Write(t, ca.Role(t, secureCluster, role), ca)
	s.mgrTLS, _ = ca.TLS(t, secureCluster, secureCaller)
	etcdNode := securitytest.Write(t, s.etcdCA.Issue(t, securitytest.LeafOptions{CommonName: role}), s.etcdCA)
	s.nodeArgs = []string{
		"-" + security.FlagTLSCA, node.CA, "-" + security.FlagTLSCert, node.Cert, "-" + security.FlagTLSKey, node.Key,
		"-" + security.FlagTLSCluster, secureCluster, "-tls-allow-callers", secureCaller,
		"-" + security.FlagEtcdCA, s.etcdCAF, "-" + security.FlagEtcdCert, etcdNode.Cert, "-" + security.FlagEtcdKey, etcdNode.Key,
	}
	return s
}

// layout creates the least-privilege roles and users of
// docs/operations.md: cm-manager reads the sessions; cm-node-<role>
// reads them and writes its role's keys and the ServerID counter.
func (s *secureSetup) layout() {
	t := s.t
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	p := secureEtcdPrefix
	read, rw := clientv3.PermissionType(clientv3.PermRead), clientv3.PermissionType(clientv3.PermReadWrite)
	node := "cm-node-" + s.role
	steps := []struct {
		what string
		do   func() error
	}{
		{"role cm-manager", func() error { _, err := s.root.RoleAdd(ctx, "cm-manager"); return err }},
		{"cm-manager reads " + p + "/", func() error {
			_, err := s.root.RoleGrantPermission(ctx, "cm-manager", p+"/", clientv3.GetPrefixRangeEnd(p+"/"), read)
			return err
		}},
		{"role " + node, func() error { _, err := s.root.RoleAdd(ctx, node); return err }},
		{node + " reads " + p + "/", func() error {
			_, err := s.root.RoleGrantPermission(ctx, node, p+"/", clientv3.GetPrefixRangeEnd(p+"/"), read)
			return err
		}},
		{node + " writes its role's keys", func() error {
			k := p + "/" + s.role
			_, err := s.root.RoleGrantPermission(ctx, node, k, clientv3.GetPrefixRangeEnd(k), rw)
			return err
		}},
		{node + " writes the ServerID counter", func() error {
			_, err := s.root.RoleGrantPermission(ctx, node, p+"/id", "", rw)
			return err
		}},
		{"user " + s.role, func() error { _, err := s.root.UserAdd(ctx, s.role, "unused-"+s.role); return err }},
		{"grant " + node, func() error { _, err := s.root.UserGrantRole(ctx, s.role, node); return err }},
		{"user " + secureCaller, func() error { _, err := s.root.UserAdd(ctx, secureCaller, secureManagerPW); return err }},
		{"grant cm-manager", func() error { _, err := s.root.UserGrantRole(ctx, secureCaller, "cm-manager"); return err }},
	}
	for _, st := range steps {
		require.NoError(t, st.do(), "etcd layout: %s", st.what)
	}
}

// etcdClient returns a client of etcd over TLS presenting the certificate
// of no user, with c's user and password; closed by Cleanup.
func (s *secureSetup) etcdClient(c security.EtcdConfig) *clientv3.Client {
	s.t.Helper()
	c.Endpoints = []string{s.etcd.Endpoint()}
	c.CAFile, c.CertFile, c.KeyFile = s.etcdCAF, s.anon.Cert, s.anon.Key
	cli, err := security.NewEtcdClient(c, zap.NewNop(), session.EtcdDialOptions()...)
	require.NoError(s.t, err, "etcd client of %s", c)
	s.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// newManager is newManagerOf with security: the manager reads etcd as
// user querycoord (password from a file, as -etcd-password-file) and
// dials the nodes with mutual TLS through dial.
func (s *secureSetup) newManager(t *testing.T, cfg session.Config, role string,
	dial func(ctx context.Context, addr string) (net.Conn, error)) (*clientmanager.Manager, *observer.ObservedLogs) {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "etcd-password")
	require.NoError(t, os.WriteFile(pw, []byte(secureManagerPW+"\n"), 0o600))
	cli := s.etcdClient(security.EtcdConfig{Username: secureCaller, PasswordFile: pw})
	mc := clientmanager.DefaultConfig()
	mc.SessionConfig = cfg
	mc.TLS = s.mgrTLS
	mc.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	core, logs := observer.New(zapcore.InfoLevel)
	m, err := clientmanager.New(cli, mc, clientmanager.WithDialOptions(grpc.WithContextDialer(dial)),
		clientmanager.WithLogger(zap.New(core)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	require.NoError(t, m.AddDependency(role))
	return m, logs
}

// checkSecure checks, on a running secure cluster, what the failover
// scenario cannot show: a node refuses a plaintext caller, and the
// manager's etcd user cannot write.
func (s *secureSetup) checkSecure(c *cluster) {
	t := s.t
	t.Helper()
	cc, err := grpc.NewClient(c.nodes[0].addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = cc.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	plain := cc.Invoke(ctx, procEcho, wrapperspb.String("x"), new(wrapperspb.StringValue))
	require.Equal(t, codes.Unavailable, status.Code(plain), "a plaintext caller is refused: %v", plain)

	cli := s.etcdClient(security.EtcdConfig{Username: secureCaller, Password: secureManagerPW})
	_, err = cli.Put(ctx, secureEtcdPrefix+"/"+s.role+"-999", "{}")
	require.True(t, session.IsEtcdAuthError(err), "the manager's user must not write: %v", err)
	t.Logf("secure: mTLS (cluster %q, nodes accept role %s only), etcd over TLS with client certificates and auth; "+
		"a plaintext caller got %s, the manager's etcd user writing got %q", secureCluster, secureCaller, status.Code(plain), err)
}

// secureMember is an embedded secure etcd as a scenario's etcdServer. The
// secure scenarios do not stop it: a restart would come back without TLS.
type secureMember struct{ *etcdtest.Member }

func (m secureMember) Restart(t testing.TB) {
	t.Helper()
	t.Fatalf("integration: the secure etcd is not restarted by these scenarios")
}

// secureSystemEtcd is the etcd binary on PATH serving its clients over
// TLS, requiring client certificates of its CA.
type secureSystemEtcd struct {
	*systemEtcd
	files securitytest.Files
	s     *secureSetup
}

func startSecureSystemEtcd(t *testing.T, files securitytest.Files, s *secureSetup) *secureSystemEtcd {
	t.Helper()
	e := &secureSystemEtcd{systemEtcd: newSystemEtcd(t, systemEtcdBin(t), "s0"), files: files, s: s}
	e.initialCluster = e.name + "=" + e.peerURL()
	e.Restart(t)
	return e
}

// Restart starts the process (again) and waits until it serves.
func (e *secureSystemEtcd) Restart(t testing.TB) {
	t.Helper()
	e.launch(t, "https", "integration-secure",
		"--cert-file", e.files.Cert, "--key-file", e.files.Key, "--trusted-ca-file", e.files.CA,
		"--client-cert-auth", "--bcrypt-cost", strconv.Itoa(4))
	e.waitServing(t, func() error {
		cli, err := security.NewEtcdClient(security.EtcdConfig{Endpoints: []string{e.Endpoint()}, CAFile: e.files.CA,
			CertFile: e.s.anon.Cert, KeyFile: e.s.anon.Key, DialTimeout: time.Second}, zap.NewNop())
		if err != nil {
			return err
		}
		defer func() { _ = cli.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = cli.Get(ctx, "integration/ready")
		if err != nil && strings.Contains(err.Error(), "user name is empty") {
			return nil // serving (with auth on, a request without a user is refused)
		}
		return err
	})
}
