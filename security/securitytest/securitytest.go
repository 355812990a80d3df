// Package securitytest makes a certificate authority and certificates that
// name roles (see package security) at test time, with crypto/x509, and
// writes them to files.
package securitytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/security"
)

// CA is a self-signed certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
	// PEM is Cert, PEM-encoded.
	PEM    []byte
	serial atomic.Int64
}

// NewCA returns a CA valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.serial.Store(1)
	return ca
}

// Leaf is a certificate and its key, PEM-encoded.
type Leaf struct {
	Cert         *x509.Certificate
	CertPEM, Key []byte
}

// LeafOptions describe a certificate to issue.
type LeafOptions struct {
	// DNSNames and URIs are its SANs; 127.0.0.1 and localhost are always
	// added (IP and DNS), so etcd and loopback servers accept it.
	DNSNames []string
	URIs     []string
	// CommonName is its subject's CN (etcd takes the user name from it).
	CommonName string
	// NotBefore and NotAfter default to an hour ago and a day from now.
	NotBefore, NotAfter time.Time
}

// Issue signs a certificate for server and client authentication.
func (ca *CA) Issue(t testing.TB, o LeafOptions) Leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: o.CommonName},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     append([]string{"localhost"}, o.DNSNames...),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	for _, u := range o.URIs {
		pu, err := url.Parse(u)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return Leaf{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}

// Role issues a certificate naming role of cluster (its DNS SAN and URI
// SAN), with CommonName role.
func (ca *CA) Role(t testing.TB, cluster, role string) Leaf {
	t.Helper()
	return ca.Issue(t, LeafOptions{
		DNSNames:   []string{security.RoleDNSName(cluster, role)},
		URIs:       []string{security.RoleURI(cluster, role)},
		CommonName: role,
	})
}

// Files are the paths of a certificate, its key and the CA.
type Files struct{ Cert, Key, CA string }

// Write writes leaf and the CAs' PEM (concatenated) into a new directory
// of t and returns their paths.
func Write(t testing.TB, leaf Leaf, cas ...*CA) Files {
	t.Helper()
	dir := t.TempDir()
	f := Files{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), CA: filepath.Join(dir, "ca.pem")}
	f.Rewrite(t, leaf, cas...)
	return f
}

// Rewrite replaces the files' contents with leaf and the CAs, each file
// atomically (written beside, then renamed).
func (f Files) Rewrite(t testing.TB, leaf Leaf, cas ...*CA) {
	t.Helper()
	var caPEM []byte
	for _, ca := range cas {
		caPEM = append(caPEM, ca.PEM...)
	}
	for path, b := range map[string][]byte{f.Cert: leaf.CertPEM, f.Key: leaf.Key, f.CA: caPEM} {
		require.NoError(t, os.WriteFile(path+".tmp", b, 0o600))
		require.NoError(t, os.Rename(path+".tmp", path))
	}
}

// Config returns a security.Config of the files, for cluster.
func (f Files) Config(cluster string) security.Config {
	c := security.DefaultConfig()
	c.Cluster = cluster
	c.CertFile, c.KeyFile, c.CAFile = f.Cert, f.Key, f.CA
	return c
}

// TLS writes a certificate of role of cluster signed by ca, and returns a
// security.TLS of it with its files.
func (ca *CA) TLS(t testing.TB, cluster, role string) (*security.TLS, Files) {
	t.Helper()
	f := Write(t, ca.Role(t, cluster, role), ca)
	tl, err := security.New(f.Config(cluster))
	require.NoError(t, err)
	return tl, f
}
