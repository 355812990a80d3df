package security

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
)

// TLS holds a process's certificate and its cluster's CA pool, reloaded
// from their files when they change, and makes the TLS configurations and
// gRPC credentials of both sides from them. Safe for concurrent use; it
// starts no goroutine and needs no Close.
type TLS struct {
	cfg   Config
	clock clockwork.Clock

	cur      atomic.Pointer[material]
	checked  atomic.Int64 // clock's UnixNano of the last check of the files
	reloadMu sync.Mutex   // one reload at a time
	lastErr  atomic.Pointer[error]
}

// material is one generation of what the files (or the TLSConfig) give.
type material struct {
	cert *tls.Certificate // nil: from getCert / getClientCert
	pool *x509.CertPool
	raw  [3][]byte // cert, key, CA files as read

	getCert       func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	getClientCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
}

// Option sets a hook of New.
type Option func(*TLS)

// WithClock sets the clock of ReloadInterval and of certificate validity
// checks made by this package. Default: the real clock.
func WithClock(c clockwork.Clock) Option {
	return func(t *TLS) {
		if c != nil {
			t.clock = c
		}
	}
}

func realClock() clockwork.Clock { return clockwork.NewRealClock() }

// New validates cfg and loads its certificate and CA.
func New(cfg Config, opts ...Option) (*TLS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &TLS{cfg: cfg, clock: realClock()}
	for _, o := range opts {
		o(t)
	}
	if cfg.TLSConfig != nil {
		m, err := fromTLSConfig(cfg.TLSConfig)
		if err != nil {
			return nil, err
		}
		t.cur.Store(m)
		return t, nil
	}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Cluster returns Config.Cluster.
func (t *TLS) Cluster() string { return t.cfg.Cluster }

// Reload reads the files now and, when they changed and parse, makes the
// next handshakes use them. It returns why they could not be used; the
// previous certificate stays in use then.
func (t *TLS) Reload() error {
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	return t.reloadLocked()
}

func (t *TLS) reloadLocked() error {
	if t.cfg.TLSConfig != nil {
		return nil
	}
	t.checked.Store(t.clock.Now().UnixNano())
	var raw [3][]byte
	for i, f := range []string{t.cfg.CertFile, t.cfg.KeyFile, t.cfg.CAFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			return t.fail(errors.Wrap(err, "security: read"))
		}
		raw[i] = b
	}
	if old := t.cur.Load(); old != nil && bytes.Equal(old.raw[0], raw[0]) &&
		bytes.Equal(old.raw[1], raw[1]) && bytes.Equal(old.raw[2], raw[2]) {
		return nil
	}
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return t.fail(errors.Wrapf(err, "security: certificate %s and key %s", t.cfg.CertFile, t.cfg.KeyFile))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw[2]) {
		return t.fail(errors.Newf("security: CA file %s holds no PEM certificate", t.cfg.CAFile))
	}
	t.cur.Store(&material{cert: &cert, pool: pool, raw: raw})
	t.lastErr.Store(nil)
	return nil
}

func (t *TLS) fail(err error) error {
	t.lastErr.Store(&err)
	return err
}

// LastReloadError returns why the last check of the files could not use
// them, or nil when it could (or found them unchanged).
func (t *TLS) LastReloadError() error {
	if p := t.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// current returns the material to handshake with, after checking the files
// when ReloadInterval has passed. A check already running elsewhere is not
// waited for.
func (t *TLS) current() *material {
	if t.cfg.TLSConfig == nil {
		next := t.checked.Load() + int64(t.cfg.ReloadInterval)
		if t.clock.Now().UnixNano() >= next && t.reloadMu.TryLock() {
			_ = t.reloadLocked() // kept in LastReloadError
			t.reloadMu.Unlock()
		}
	}
	return t.cur.Load()
}

func fromTLSConfig(c *tls.Config) (*material, error) {
	m := &material{pool: c.RootCAs, getCert: c.GetCertificate, getClientCert: c.GetClientCertificate}
	if m.pool == nil {
		m.pool = c.ClientCAs
	}
	if len(c.Certificates) > 0 {
		m.cert = &c.Certificates[0]
	}
	switch {
	case m.pool == nil:
		return nil, errors.New("security: TLSConfig has neither RootCAs nor ClientCAs")
	case m.cert == nil && m.getCert == nil && m.getClientCert == nil:
		return nil, errors.New("security: TLSConfig has no certificate (Certificates, GetCertificate or GetClientCertificate)")
	}
	return m, nil
}

// serverCert returns the certificate to present to a client.
func (m *material) serverCert(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.cert != nil {
		return m.cert, nil
	}
	if m.getCert != nil {
		return m.getCert(hello)
	}
	return m.getClientCert(&tls.CertificateRequestInfo{})
}

// clientCert returns the certificate to present to a server.
func (m *material) clientCert(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if m.cert != nil {
		return m.cert, nil
	}
	if m.getClientCert != nil {
		return m.getClientCert(req)
	}
	return m.getCert(&tls.ClientHelloInfo{})
}

// ClientConfig returns the TLS configuration of a connection to a node of
// role: it presents this process's certificate and accepts the node's only
// if it chains to the CA and names role (a *RoleError otherwise, or the
// x509 error of a certificate that is expired or not the CA's). ServerName
// is Authority(role).
func (t *TLS) ClientConfig(role string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: Authority(t.cfg.Cluster, role),
		NextProtos: []string{"h2"},
		GetClientCertificate: func(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := t.current().clientCert(req)
			if err != nil {
				return nil, err
			}
			return c, t.checkOwn(c)
		},
		// The chain is verified by VerifyConnection, against the CA pool
		// of the moment and the role's names rather than a host name.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return t.verifyPeer(cs, x509.ExtKeyUsageServerAuth, role)
		},
	}
}

// ServerConfig returns the TLS configuration of a node's server: it
// presents this process's certificate and requires a client certificate
// that chains to the CA (an expired one is refused with the TLS alert
// "expired certificate"). Callers' roles are checked per call, by
// UnaryServerInterceptor and StreamServerInterceptor.
func (t *TLS) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := t.current()
			return &tls.Config{
				MinVersion:     tls.VersionTLS12,
				NextProtos:     []string{"h2"},
				GetCertificate: m.serverCert,
				ClientCAs:      m.pool,
				ClientAuth:     tls.RequireAndVerifyClientCert,
				Time:           t.clock.Now,
			}, nil
		},
	}
}

// checkOwn returns an error naming c when it is expired or not yet valid:
// a server would refuse it, and with TLS 1.3 the client would only see
// its connection closed.
func (t *TLS) checkOwn(c *tls.Certificate) error {
	if c == nil || c.Leaf == nil {
		return nil
	}
	now := t.clock.Now()
	if now.After(c.Leaf.NotAfter) || now.Before(c.Leaf.NotBefore) {
		return errors.Newf("security: this process's certificate %v is expired or not yet valid (valid from %s to %s, now %s): renew %s",
			CertificateNames(c.Leaf), c.Leaf.NotBefore.Format(time.RFC3339), c.Leaf.NotAfter.Format(time.RFC3339),
			now.Format(time.RFC3339), t.certSource())
	}
	return nil
}

// certSource names where the certificate comes from.
func (t *TLS) certSource() string {
	if t.cfg.CertFile != "" {
		return t.cfg.CertFile
	}
	return "TLSConfig's certificate"
}

// verifyPeer verifies the peer's chain against the current CA pool for
// usage, and that its certificate names role.
func (t *TLS) verifyPeer(cs tls.ConnectionState, usage x509.ExtKeyUsage, role string) error {
	if len(cs.PeerCertificates) == 0 {
		return VerifyRole(t.cfg.Cluster, nil, role)
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         t.current().pool,
		Intermediates: inter,
		CurrentTime:   t.clock.Now(),
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return errors.Wrapf(err, "security: certificate of %s (%v)", Authority(t.cfg.Cluster, role), CertificateNames(leaf))
	}
	return VerifyRole(t.cfg.Cluster, leaf, role)
}
