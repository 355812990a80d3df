package securitytest

import (
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/security"
)

func TestRoleCertificateChainsAndNamesRole(t *testing.T) {
	ca := NewCA(t, "test-ca")
	leaf := ca.Role(t, "c1", "querynode")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	_, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool})
	require.NoError(t, err)
	require.Equal(t, []string{"querynode"}, security.CertificateRoles("c1", leaf.Cert))

	_, err = leaf.Cert.Verify(x509.VerifyOptions{Roots: x509.NewCertPool()})
	require.Error(t, err, "another CA's pool must not verify it")
}
