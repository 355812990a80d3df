// Package securitytest makes a certificate authority and certificates that
// name roles (see package security) at test time, with crypto/x509, and
// writes them to files.
package securitytest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/internal/certs"
	"github.com/coordkit/clientmanager/security"
)

// CA is a self-signed certificate authority.
type CA struct{ *certs.CA }

// NewCA returns a CA valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := certs.NewCA(name)
	require.NoError(t, err)
	return &CA{ca}
}

// Leaf is a certificate and its key, PEM-encoded.
type Leaf = certs.Leaf

// LeafOptions describe a certificate to issue.
type LeafOptions = certs.LeafOptions

// Issue signs a certificate for server and client authentication.
func (ca *CA) Issue(t testing.TB, o LeafOptions) Leaf {
	t.Helper()
	leaf, err := ca.CA.Issue(o)
	require.NoError(t, err)
	return leaf
}

// Role issues a certificate naming role of cluster (its DNS SAN and URI
// SAN), with CommonName role.
func (ca *CA) Role(t testing.TB, cluster, role string) Leaf {
	t.Helper()
	return ca.Issue(t, certs.RoleOptions(cluster, role))
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
