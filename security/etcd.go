package security

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// EtcdPasswordEnv is the environment variable the binaries read the etcd
// password from when no flag gives it.
const EtcdPasswordEnv = "CM_ETCD_PASSWORD"

// EtcdConfig says how to reach etcd and authenticate to it. Its String
// never shows the password.
type EtcdConfig struct {
	// Endpoints are etcd's client addresses, host:port or URLs. Required.
	Endpoints []string
	// CAFile, when set, makes the client use TLS and verify etcd's
	// certificate against this CA. Default "": plaintext.
	CAFile string
	// CertFile and KeyFile are the client certificate and key presented to
	// etcd (client-cert auth; with auth enabled and no Username, etcd
	// takes the user from the certificate's Common Name). The certificate
	// is read again on each new connection, so a rotated one is used
	// without a restart. Both or neither; they need CAFile.
	CertFile, KeyFile string
	// Username and Password authenticate to etcd; the client keeps its
	// token fresh on its own. Default "": none.
	Username, Password string
	// PasswordFile, when Password is empty, holds the password (one line;
	// surrounding white space is trimmed).
	PasswordFile string
	// DialTimeout bounds the first connection. Default 5 s.
	DialTimeout time.Duration
}

// String describes c without its password.
func (c EtcdConfig) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "etcd %s", strings.Join(c.Endpoints, ","))
	if c.CAFile != "" {
		b.WriteString(" tls")
	}
	if c.CertFile != "" {
		fmt.Fprintf(&b, " cert=%s", c.CertFile)
	}
	if c.Username != "" {
		fmt.Fprintf(&b, " user=%s", c.Username)
	}
	return b.String()
}

// Validate reports the first field that is out of range.
func (c EtcdConfig) Validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("security: etcd Endpoints must not be empty")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.Newf("security: etcd CertFile (%q) and KeyFile (%q) must both be set or neither", c.CertFile, c.KeyFile)
	case c.CertFile != "" && c.CAFile == "":
		return errors.New("security: etcd CertFile needs CAFile")
	case c.Username == "" && (c.Password != "" || c.PasswordFile != ""):
		return errors.New("security: an etcd password needs Username")
	case c.DialTimeout < 0:
		return errors.Newf("security: etcd DialTimeout (%s) must be ≥ 0", c.DialTimeout)
	}
	return nil
}

// ClientConfig returns the clientv3.Config of c, with TLS and the
// password resolved, logger and dial options from the arguments.
func (c EtcdConfig) ClientConfig(log *zap.Logger, dialOpts ...grpc.DialOption) (clientv3.Config, error) {
	if err := c.Validate(); err != nil {
		return clientv3.Config{}, err
	}
	cc := clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.DialTimeout,
		Logger:      log,
		DialOptions: dialOpts,
		Username:    c.Username,
		Password:    c.Password,
	}
	if cc.DialTimeout == 0 {
		cc.DialTimeout = 5 * time.Second
	}
	if cc.Username != "" && cc.Password == "" && c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return clientv3.Config{}, errors.Wrap(err, "security: etcd password file")
		}
		cc.Password = strings.TrimSpace(string(b))
	}
	if c.CAFile == "" {
		return cc, nil
	}
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return clientv3.Config{}, errors.Wrap(err, "security: etcd CA file")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return clientv3.Config{}, errors.Newf("security: etcd CA file %s holds no PEM certificate", c.CAFile)
	}
	cc.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if c.CertFile != "" {
		certs := &TLS{cfg: Config{CertFile: c.CertFile, KeyFile: c.KeyFile, CAFile: c.CAFile, ReloadInterval: time.Second}}
		certs.clock = realClock()
		if err := certs.Reload(); err != nil {
			return clientv3.Config{}, errors.Wrap(err, "security: etcd client certificate")
		}
		cc.TLS.GetClientCertificate = func(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return certs.current().clientCert(req)
		}
	}
	return cc, nil
}

// NewEtcdClient makes the etcd client of c. An error names etcd, its
// endpoints and user (never the password) and the cause, such as
// "authentication failed, invalid user ID or password".
func NewEtcdClient(c EtcdConfig, log *zap.Logger, dialOpts ...grpc.DialOption) (*clientv3.Client, error) {
	cc, err := c.ClientConfig(log, dialOpts...)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, errors.Wrapf(err, "security: %s", c)
	}
	return cli, nil
}
