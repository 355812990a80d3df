// Package certs makes a certificate authority and certificates that name
// roles (see package security), with crypto/x509: for the tests'
// certificates (security/securitytest) and the demo's (cmctl demo -tls).
package certs

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
	"sync/atomic"
	"time"

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

// NewCA returns a CA named name, valid from an hour ago for a day.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
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
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.serial.Store(1)
	return ca, nil
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

// RoleOptions are the options of a certificate naming role of cluster:
// its DNS SAN and URI SAN, with CommonName role.
func RoleOptions(cluster, role string) LeafOptions {
	return LeafOptions{
		DNSNames:   []string{security.RoleDNSName(cluster, role)},
		URIs:       []string{security.RoleURI(cluster, role)},
		CommonName: role,
	}
}

// Issue signs a certificate for server and client authentication.
func (ca *CA) Issue(o LeafOptions) (Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Leaf{}, err
	}
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
		if err != nil {
			return Leaf{}, err
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return Leaf{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Leaf{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Leaf{}, err
	}
	return Leaf{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}, nil
}
