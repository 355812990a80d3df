package security_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/security/securitytest"
)

const (
	cluster     = "c1"
	testTimeout = 20 * time.Second
)

// startNode serves the health service over t's server credentials,
// allowing callerRoles, and returns its address.
func startNode(t *testing.T, tl *security.TLS, callerRoles ...string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(tl.ServerOptions(callerRoles...)...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// dial connects to addr as a manager expecting a node of role.
func dial(t *testing.T, tl *security.TLS, addr, role string) *grpc.ClientConn {
	t.Helper()
	return dialWith(t, addr, grpc.WithTransportCredentials(tl.ClientCredentials()),
		grpc.WithAuthority(security.Authority(cluster, role)))
}

func dialWith(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func check(cc *grpc.ClientConn, p *peer.Peer) error {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var opts []grpc.CallOption
	if p != nil {
		opts = append(opts, grpc.Peer(p))
	}
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, opts...)
	return err
}

// peerSerial returns the serial number of the server certificate p saw.
func peerSerial(t *testing.T, p *peer.Peer) int64 {
	t.Helper()
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	require.True(t, ok, "peer %v is not TLS", p.AuthInfo)
	return info.State.PeerCertificates[0].SerialNumber.Int64()
}

func TestCallsSucceedWithMatchingRoles(t *testing.T) {
	ca := securitytest.NewCA(t, "ca")
	nodeTLS, _ := ca.TLS(t, cluster, "querynode")
	mgrTLS, _ := ca.TLS(t, cluster, "querycoord")
	addr := startNode(t, nodeTLS, "querycoord")
	require.NoError(t, check(dial(t, mgrTLS, addr, "querynode"), nil))

	// A certificate naming the role only by its URI SAN is as good.
	uriOnly := securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{URIs: []string{security.RoleURI(cluster, "querynode")}}), ca)
	uriTLS, err := security.New(uriOnly.Config(cluster))
	require.NoError(t, err)
	require.NoError(t, check(dial(t, mgrTLS, startNode(t, uriTLS, "querycoord"), "querynode"), nil))
}

func TestNodeOfAnotherRoleFailsTheHandshake(t *testing.T) {
	ca := securitytest.NewCA(t, "ca")
	impostor, _ := ca.TLS(t, cluster, "datanode")
	mgrTLS, _ := ca.TLS(t, cluster, "querycoord")
	addr := startNode(t, impostor)

	// grpc fails the call with the handshake error's own status.
	err := check(dial(t, mgrTLS, addr, "querynode"), nil)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), "certificate names [localhost datanode.c1 spiffe://c1/datanode], want role querynode")

	// The handshake itself returns the typed error.
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, _, err = mgrTLS.ClientCredentials().ClientHandshake(ctx, security.Authority(cluster, "querynode"), conn)
	var re *security.RoleError
	require.True(t, errors.As(err, &re), "%v", err)
	require.Equal(t, []string{"querynode"}, re.Expected)
	require.Contains(t, re.Presented, "spiffe://c1/datanode")
	require.Equal(t, codes.PermissionDenied, status.Code(re))

	// An address as authority names no role: refused, not trusted.
	err = check(dialWith(t, addr, grpc.WithTransportCredentials(mgrTLS.ClientCredentials())), nil)
	require.ErrorContains(t, err, "names no role of cluster")
}

func TestCallerOfAnotherRoleIsDenied(t *testing.T) {
	ca := securitytest.NewCA(t, "ca")
	nodeTLS, _ := ca.TLS(t, cluster, "querynode")
	proxyTLS, _ := ca.TLS(t, cluster, "proxy")
	addr := startNode(t, nodeTLS, "querycoord")

	err := check(dial(t, proxyTLS, addr, "querynode"), nil)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "certificate names [localhost proxy.c1 spiffe://c1/proxy], want role querycoord")

	// A certificate of the CA naming no role of the cluster.
	strangerFiles := securitytest.Write(t, ca.Issue(t, securitytest.LeafOptions{CommonName: "x"}), ca)
	stranger, err := security.New(strangerFiles.Config(cluster))
	require.NoError(t, err)
	err = check(dial(t, stranger, addr, "querynode"), nil)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
}

func TestClientWithoutCertificateIsRejected(t *testing.T) {
	ca := securitytest.NewCA(t, "ca")
	nodeTLS, _ := ca.TLS(t, cluster, "querynode")
	addr := startNode(t, nodeTLS)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	noCert := credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	// With TLS 1.3 the client may see the node's alert ("certificate
	// required") or only its connection closed.
	err := check(dialWith(t, addr, grpc.WithTransportCredentials(noCert)), nil)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

func TestExpiredCertificatesAreRejectedClearly(t *testing.T) {
	ca := securitytest.NewCA(t, "ca")
	expired := securitytest.LeafOptions{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
	}
	role := func(r string, o securitytest.LeafOptions) *security.TLS {
		o.DNSNames = []string{security.RoleDNSName(cluster, r)}
		tl, err := security.New(securitytest.Write(t, ca.Issue(t, o), ca).Config(cluster))
		require.NoError(t, err)
		return tl
	}
	t.Run("client", func(t *testing.T) {
		addr := startNode(t, role("querynode", securitytest.LeafOptions{}))
		err := check(dial(t, role("querycoord", expired), addr, "querynode"), nil)
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		require.Contains(t, err.Error(), "this process's certificate [localhost querycoord.c1] is expired")

		// Presented anyway (by a client of its own), the node refuses it.
		leaf := ca.Issue(t, expired)
		pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.Key)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		conn, err := tls.Dial("tcp", addr, &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool,
			ServerName: "localhost", MaxVersion: tls.VersionTLS12, NextProtos: []string{"h2"}})
		if conn != nil {
			_ = conn.Close()
		}
		require.ErrorContains(t, err, "expired certificate")
	})
	t.Run("node", func(t *testing.T) {
		addr := startNode(t, role("querynode", expired))
		err := check(dial(t, role("querycoord", securitytest.LeafOptions{}), addr, "querynode"), nil)
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		require.Contains(t, err.Error(), "certificate has expired")
		require.Contains(t, err.Error(), "querynode.c1")
	})
}

func TestReloadPicksUpRotatedFilesAndKeepsOldOnBadOnes(t *testing.T) {
	ca := securitytest.NewCA(t, "ca")
	clock := clockwork.NewFakeClock()
	first := ca.Role(t, cluster, "querynode")
	files := securitytest.Write(t, first, ca)
	nodeTLS, err := security.New(files.Config(cluster), security.WithClock(clock))
	require.NoError(t, err)
	mgrTLS, _ := ca.TLS(t, cluster, "querycoord")
	addr := startNode(t, nodeTLS)

	serialOfNewConn := func() int64 {
		var p peer.Peer
		require.NoError(t, check(dial(t, mgrTLS, addr, "querynode"), &p))
		return peerSerial(t, &p)
	}
	require.Equal(t, first.Cert.SerialNumber.Int64(), serialOfNewConn())

	second := ca.Role(t, cluster, "querynode")
	files.Rewrite(t, second, ca)
	require.Equal(t, first.Cert.SerialNumber.Int64(), serialOfNewConn(), "not checked before ReloadInterval")
	clock.Advance(time.Second)
	require.Equal(t, second.Cert.SerialNumber.Int64(), serialOfNewConn(), "checked after ReloadInterval")

	// A half-written rotation (the key of another certificate) is not used.
	third := ca.Role(t, cluster, "querynode")
	third.Key = first.Key
	files.Rewrite(t, third, ca)
	require.ErrorContains(t, nodeTLS.Reload(), "private key does not match public key")
	require.Error(t, nodeTLS.LastReloadError())
	require.Equal(t, second.Cert.SerialNumber.Int64(), serialOfNewConn())
}

// TestRotationUnderLoadFailsNoCall rotates both sides' certificates and
// the CA while calls run: calls in flight and new connections all succeed,
// and new connections use the new certificates.
func TestRotationUnderLoadFailsNoCall(t *testing.T) {
	oldCA, newCA := securitytest.NewCA(t, "old"), securitytest.NewCA(t, "new")
	nodeFiles := securitytest.Write(t, oldCA.Role(t, cluster, "querynode"), oldCA)
	mgrFiles := securitytest.Write(t, oldCA.Role(t, cluster, "querycoord"), oldCA)
	nodeCfg, mgrCfg := nodeFiles.Config(cluster), mgrFiles.Config(cluster)
	nodeCfg.ReloadInterval, mgrCfg.ReloadInterval = 0, 0
	nodeTLS, err := security.New(nodeCfg)
	require.NoError(t, err)
	mgrTLS, err := security.New(mgrCfg)
	require.NoError(t, err)
	addr := startNode(t, nodeTLS, "querycoord")
	cc := dial(t, mgrTLS, addr, "querynode")
	require.NoError(t, check(cc, nil))

	var calls, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if err := check(cc, nil); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	// Both CAs trusted first, then the new certificates, then the old CA
	// dropped: the order an operator rotates a CA in.
	nodeNew, mgrNew := newCA.Role(t, cluster, "querynode"), newCA.Role(t, cluster, "querycoord")
	steps := []func(){
		func() {
			nodeFiles.Rewrite(t, oldCA.Role(t, cluster, "querynode"), oldCA, newCA)
			mgrFiles.Rewrite(t, oldCA.Role(t, cluster, "querycoord"), oldCA, newCA)
		},
		func() { nodeFiles.Rewrite(t, nodeNew, oldCA, newCA); mgrFiles.Rewrite(t, mgrNew, oldCA, newCA) },
		func() { nodeFiles.Rewrite(t, nodeNew, newCA); mgrFiles.Rewrite(t, mgrNew, newCA) },
	}
	for _, step := range steps {
		step()
		before := calls.Load()
		require.Eventually(t, func() bool { return calls.Load() > before+50 }, testTimeout, time.Millisecond)
		// A new connection in the middle of the load handshakes anew.
		var p peer.Peer
		require.NoError(t, check(dial(t, mgrTLS, addr, "querynode"), &p))
	}
	var p peer.Peer
	require.NoError(t, check(dial(t, mgrTLS, addr, "querynode"), &p))
	require.Equal(t, nodeNew.Cert.SerialNumber, peerSerialBig(t, &p))
	close(stop)
	wg.Wait()
	require.Zero(t, failed.Load(), "first failure: %v", firstErr.Load())
	require.Positive(t, calls.Load())
	t.Logf("%d calls during rotation, 0 failed", calls.Load())
}

func peerSerialBig(t *testing.T, p *peer.Peer) any {
	t.Helper()
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	require.True(t, ok)
	return info.State.PeerCertificates[0].SerialNumber
}
