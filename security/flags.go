package security

import (
	"flag"
	"os"
)

// Flags are the command-line flags of the binaries for mutual TLS and
// etcd credentials, registered on a flag.FlagSet by Register. The
// password is taken from --etcd-password, else --etcd-password-file, else
// the environment variable EtcdPasswordEnv; it is never printed.
type Flags struct {
	TLSCA, TLSCert, TLSKey, TLSCluster  string
	EtcdCA, EtcdCert, EtcdKey, EtcdUser string
	EtcdPassword, EtcdPasswordFile      string
}

// The flag names, shared by every binary.
const (
	FlagTLSCA            = "tls-ca"
	FlagTLSCert          = "tls-cert"
	FlagTLSKey           = "tls-key"
	FlagTLSCluster       = "tls-cluster"
	FlagEtcdCA           = "etcd-ca"
	FlagEtcdCert         = "etcd-cert"
	FlagEtcdKey          = "etcd-key"
	FlagEtcdUser         = "etcd-user"
	FlagEtcdPassword     = "etcd-password"
	FlagEtcdPasswordFile = "etcd-password-file"
)

// Register adds the flags to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.TLSCA, FlagTLSCA, "", "gRPC mutual TLS: PEM file of the cluster's CA (with -tls-cert and -tls-key); empty: plaintext")
	fs.StringVar(&f.TLSCert, FlagTLSCert, "", "gRPC mutual TLS: PEM certificate naming this process's role (DNS SAN <role>.<cluster> or URI SAN spiffe://<cluster>/<role>); re-read when it changes")
	fs.StringVar(&f.TLSKey, FlagTLSKey, "", "gRPC mutual TLS: PEM private key of -tls-cert")
	fs.StringVar(&f.TLSCluster, FlagTLSCluster, DefaultConfig().Cluster, "gRPC mutual TLS: cluster name in the certificates' role names")
	fs.StringVar(&f.EtcdCA, FlagEtcdCA, "", "etcd over TLS: PEM file of etcd's CA; empty: plaintext")
	fs.StringVar(&f.EtcdCert, FlagEtcdCert, "", "etcd client certificate (PEM), with -etcd-key and -etcd-ca")
	fs.StringVar(&f.EtcdKey, FlagEtcdKey, "", "etcd client key (PEM)")
	fs.StringVar(&f.EtcdUser, FlagEtcdUser, "", "etcd user name; empty: none (or the client certificate's CN)")
	fs.StringVar(&f.EtcdPassword, FlagEtcdPassword, "", "etcd password (visible to ps: prefer -"+FlagEtcdPasswordFile+" or $"+EtcdPasswordEnv+")")
	fs.StringVar(&f.EtcdPasswordFile, FlagEtcdPasswordFile, "", "file holding the etcd password")
}

// TLS returns the TLS of the --tls-* flags, or nil when none is set.
func (f *Flags) TLS() (*TLS, error) {
	if f.TLSCA == "" && f.TLSCert == "" && f.TLSKey == "" {
		return nil, nil
	}
	c := DefaultConfig()
	c.CAFile, c.CertFile, c.KeyFile = f.TLSCA, f.TLSCert, f.TLSKey
	if f.TLSCluster != "" {
		c.Cluster = f.TLSCluster
	}
	return New(c)
}

// Etcd returns the EtcdConfig of endpoints and the --etcd-* flags.
func (f *Flags) Etcd(endpoints []string) EtcdConfig {
	c := EtcdConfig{
		Endpoints: endpoints, CAFile: f.EtcdCA, CertFile: f.EtcdCert, KeyFile: f.EtcdKey,
		Username: f.EtcdUser, Password: f.EtcdPassword, PasswordFile: f.EtcdPasswordFile,
	}
	if c.Username != "" && c.Password == "" && c.PasswordFile == "" {
		c.Password = os.Getenv(EtcdPasswordEnv)
	}
	return c
}
