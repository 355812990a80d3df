package security

import (
	"crypto/tls"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
)

// Config says where a process's certificate, key and CA come from, and
// which cluster its certificates name roles of.
type Config struct {
	// CertFile and KeyFile are the PEM certificate (chain) and private key
	// the process presents, as a server and as a client. Both or neither.
	CertFile, KeyFile string
	// CAFile holds the PEM certificates of the cluster's CA: the peers'
	// certificates must chain to one of them. Required with CertFile.
	CAFile string
	// TLSConfig, instead of the files, gives the certificate
	// (Certificates[0], GetCertificate or GetClientCertificate) and the CA
	// pool (RootCAs, or else ClientCAs). It is not reloaded; the rest of it
	// is ignored. Default nil.
	TLSConfig *tls.Config
	// Cluster is the cluster name in the certificate names (see the
	// package doc). Default "cm". Must be non-empty, without '/'.
	Cluster string
	// ReloadInterval is how often, at most, the files are checked for a
	// change, on a handshake. Default 1 s. Zero checks them on every
	// handshake. Must be ≥ 0.
	ReloadInterval time.Duration
}

// DefaultConfig returns the defaults documented on each field; TLS stays
// off until CertFile/KeyFile/CAFile or TLSConfig are set.
func DefaultConfig() Config {
	return Config{Cluster: "cm", ReloadInterval: time.Second}
}

// Enabled reports whether c gives a certificate: files or a TLSConfig.
func (c Config) Enabled() bool {
	return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" || c.TLSConfig != nil
}

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	files := c.CertFile != "" || c.KeyFile != "" || c.CAFile != ""
	switch {
	case c.Cluster == "" || strings.ContainsAny(c.Cluster, "/ "):
		return errors.Newf("security: Cluster (%q) must be non-empty, without '/' or spaces", c.Cluster)
	case c.ReloadInterval < 0:
		return errors.Newf("security: ReloadInterval (%s) must be ≥ 0", c.ReloadInterval)
	case files && c.TLSConfig != nil:
		return errors.New("security: set either CertFile/KeyFile/CAFile or TLSConfig, not both")
	case files && (c.CertFile == "" || c.KeyFile == "" || c.CAFile == ""):
		return errors.Newf("security: CertFile (%q), KeyFile (%q) and CAFile (%q) must all be set", c.CertFile, c.KeyFile, c.CAFile)
	case !files && c.TLSConfig == nil:
		return errors.New("security: no certificate: set CertFile, KeyFile and CAFile, or TLSConfig")
	}
	return nil
}
