package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/coordkit/clientmanager/internal/certs"
	"github.com/coordkit/clientmanager/security"
)

// demoTLSCluster is the cluster name of the demo's certificates.
const demoTLSCluster = "cm"

// demoCaller is the role the demo's own client manager's certificate
// names.
const demoCaller = "cmctl"

// demoEtcdFlags are the -etcd-* credentials of a real etcd (with
// -etcd-endpoints): the demo's manager uses them and passes them to every
// component (the password through a file, never on a command line).
type demoEtcdFlags struct {
	ca, cert, key, user, password, passwordFile string
}

func (f *demoEtcdFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.ca, security.FlagEtcdCA, "", "etcd over TLS: PEM file of etcd's CA (with -etcd-endpoints)")
	fs.StringVar(&f.cert, security.FlagEtcdCert, "", "etcd client certificate (PEM), with -etcd-key and -etcd-ca")
	fs.StringVar(&f.key, security.FlagEtcdKey, "", "etcd client key (PEM)")
	fs.StringVar(&f.user, security.FlagEtcdUser, "", "etcd user: it needs read-write on the demo's root path")
	fs.StringVar(&f.password, security.FlagEtcdPassword, "",
		"etcd password (visible to ps: prefer -"+security.FlagEtcdPasswordFile+" or $"+security.EtcdPasswordEnv+")")
	fs.StringVar(&f.passwordFile, security.FlagEtcdPasswordFile, "", "file holding the etcd password")
}

func (f demoEtcdFlags) set() bool {
	return f.ca != "" || f.cert != "" || f.key != "" || f.user != "" || f.password != "" || f.passwordFile != ""
}

// demoSecurity is the security of one demo run: with -tls a CA and a
// certificate per role in a temporary directory, so that the components
// and the demo's manager speak mutual TLS; the etcd credentials.
type demoSecurity struct {
	dir    string          // the temporary directory; "" when none
	certs  map[string]pem3 // role → its files, with -tls
	mgrTLS *security.TLS   // the demo's manager's, with -tls
	etcd   security.EtcdConfig
	pwFile string // the etcd password's file passed to the components
}

// pem3 are the files of one certificate.
type pem3 struct{ cert, key, ca string }

// newDemoSecurity writes what cfg asks for; close removes it.
func newDemoSecurity(cfg demoConfig, endpoints []string) (_ *demoSecurity, err error) {
	s := &demoSecurity{certs: make(map[string]pem3)}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()
	f := cfg.Etcd
	s.etcd = security.EtcdConfig{Endpoints: endpoints, CAFile: f.ca, CertFile: f.cert, KeyFile: f.key,
		Username: f.user, Password: f.password, PasswordFile: f.passwordFile}
	if s.etcd.Username != "" && s.etcd.Password == "" && s.etcd.PasswordFile == "" {
		s.etcd.Password = os.Getenv(security.EtcdPasswordEnv)
	}
	if err := s.etcd.Validate(); err != nil {
		return nil, err
	}
	if !cfg.TLS && s.etcd.Password == "" {
		return s, nil
	}
	if s.dir, err = os.MkdirTemp("", "cmctl-demo-security-"); err != nil {
		return nil, err
	}
	if s.etcd.Password != "" {
		s.pwFile = filepath.Join(s.dir, "etcd-password")
		if err := os.WriteFile(s.pwFile, []byte(s.etcd.Password+"\n"), 0o600); err != nil {
			return nil, err
		}
	} else {
		s.pwFile = s.etcd.PasswordFile
	}
	if !cfg.TLS {
		return s, nil
	}
	ca, err := certs.NewCA("cmctl demo CA")
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(s.dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		return nil, err
	}
	for _, role := range []string{nodeRole, coordRole, demoCaller} {
		leaf, err := ca.Issue(certs.RoleOptions(demoTLSCluster, role))
		if err != nil {
			return nil, err
		}
		p := pem3{cert: filepath.Join(s.dir, role+".pem"), key: filepath.Join(s.dir, role+"-key.pem"), ca: caFile}
		if err := errors.Join(os.WriteFile(p.cert, leaf.CertPEM, 0o600), os.WriteFile(p.key, leaf.Key, 0o600)); err != nil {
			return nil, err
		}
		s.certs[role] = p
	}
	c := security.DefaultConfig()
	c.Cluster = demoTLSCluster
	mine := s.certs[demoCaller]
	c.CertFile, c.KeyFile, c.CAFile = mine.cert, mine.key, mine.ca
	if s.mgrTLS, err = security.New(c); err != nil {
		return nil, err
	}
	return s, nil
}

// childArgs are the security flags of a component of role.
func (s *demoSecurity) childArgs(role string) []string {
	var a []string
	add := func(flag, v string) {
		if v != "" {
			a = append(a, "-"+flag, v)
		}
	}
	add(security.FlagEtcdCA, s.etcd.CAFile)
	add(security.FlagEtcdCert, s.etcd.CertFile)
	add(security.FlagEtcdKey, s.etcd.KeyFile)
	add(security.FlagEtcdUser, s.etcd.Username)
	add(security.FlagEtcdPasswordFile, s.pwFile)
	if p, ok := s.certs[role]; ok {
		add(security.FlagTLSCA, p.ca)
		add(security.FlagTLSCert, p.cert)
		add(security.FlagTLSKey, p.key)
		add(security.FlagTLSCluster, demoTLSCluster)
	}
	return a
}

// describe says what the run secures, for the console.
func (s *demoSecurity) describe() string {
	out := "plaintext gRPC"
	if s.mgrTLS != nil {
		out = fmt.Sprintf("mutual TLS between every process (certificates naming %s, %s and %s of cluster %q, CA in %s)",
			nodeRole, coordRole, demoCaller, demoTLSCluster, s.dir)
	}
	if s.etcd.CAFile != "" || s.etcd.Username != "" {
		out += "; " + s.etcd.String()
	}
	return out
}

// close removes the temporary directory.
func (s *demoSecurity) close() error {
	if s == nil || s.dir == "" {
		return nil
	}
	return os.RemoveAll(s.dir)
}
