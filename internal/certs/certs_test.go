package certs

import (
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/security"
)

// A role's certificate is signed by the CA, for server and client
// authentication, and names the role of the cluster as package security
// reads it; each has a serial of its own.
func TestRoleCertificateVerifiesAndNamesTheRole(t *testing.T) {
	ca, err := NewCA("test CA")
	require.NoError(t, err)
	a, err := ca.Issue(RoleOptions("c1", "querynode"))
	require.NoError(t, err)
	b, err := ca.Issue(RoleOptions("c1", "querynode"))
	require.NoError(t, err)
	require.NotEqual(t, a.Cert.SerialNumber, b.Cert.SerialNumber)

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := a.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: security.RoleDNSName("c1", "querynode"), KeyUsages: []x509.ExtKeyUsage{usage}})
		require.NoError(t, err)
	}
	require.Equal(t, "querynode", a.Cert.Subject.CommonName)
	require.Len(t, a.Cert.URIs, 1)
	require.Equal(t, security.RoleURI("c1", "querynode"), a.Cert.URIs[0].String())
	require.Contains(t, a.Cert.DNSNames, "localhost")
	require.NotEmpty(t, a.Key)
}
