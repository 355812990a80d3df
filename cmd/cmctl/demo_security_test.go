package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/security"
)

// With -tls the demo writes a CA and, for each role, a certificate that
// names it (security.CertificateRoles), passes each component its files,
// and removes them at the end; -etcd-* credentials need -etcd-endpoints,
// and a password reaches the components through a file only.
func TestDemoSecurity(t *testing.T) {
	cfg := defaultDemoConfig()
	cfg.TLS = true
	s, err := newDemoSecurity(cfg, []string{"127.0.0.1:2379"})
	require.NoError(t, err)
	require.NotNil(t, s.mgrTLS)
	for _, role := range []string{nodeRole, coordRole, demoCaller} {
		b, err := os.ReadFile(s.certs[role].cert)
		require.NoError(t, err)
		blk, _ := pem.Decode(b)
		require.NotNil(t, blk)
		cert, err := x509.ParseCertificate(blk.Bytes)
		require.NoError(t, err)
		require.Equal(t, []string{role}, security.CertificateRoles(demoTLSCluster, cert))
		c := security.DefaultConfig()
		c.Cluster = demoTLSCluster
		c.CertFile, c.KeyFile, c.CAFile = s.certs[role].cert, s.certs[role].key, s.certs[role].ca
		_, err = security.New(c)
		require.NoError(t, err, role)
	}
	args := s.childArgs(nodeRole)
	i := slices.Index(args, "-"+security.FlagTLSCert)
	require.GreaterOrEqual(t, i, 0, "%v", args)
	require.Equal(t, s.certs[nodeRole].cert, args[i+1])
	require.NoError(t, s.close())
	_, err = os.Stat(s.dir)
	require.True(t, os.IsNotExist(err), "removed: %v", err)

	cfg = defaultDemoConfig()
	cfg.Etcd.user, cfg.Etcd.password = "demo", "pw-never-on-a-command-line"
	require.ErrorContains(t, cfg.validate(), "the -etcd-* credentials need -etcd-endpoints")
	cfg.EtcdEndpoints = []string{"127.0.0.1:2379"}
	require.NoError(t, cfg.validate())
	s, err = newDemoSecurity(cfg, cfg.EtcdEndpoints)
	require.NoError(t, err)
	defer func() { _ = s.close() }()
	args = s.childArgs(coordRole)
	require.NotContains(t, args, "pw-never-on-a-command-line")
	require.NotContains(t, args, "-"+security.FlagTLSCert, "no -tls")
	i = slices.Index(args, "-"+security.FlagEtcdPasswordFile)
	require.GreaterOrEqual(t, i, 0, "%v", args)
	b, err := os.ReadFile(args[i+1])
	require.NoError(t, err)
	require.Equal(t, "pw-never-on-a-command-line\n", string(b))
	require.Contains(t, args, "demo")
	require.NotContains(t, s.describe(), "pw-never")
}
