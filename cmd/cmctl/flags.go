package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/examples"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/session"
)

// errUsage is returned when the flags of a command are wrong; the flag set
// has printed why and the command's usage.
var errUsage = errors.New("usage")

// flagEtcdEndpoints is the etcd flag of every command and example binary;
// -etcd is its short form.
const flagEtcdEndpoints = examples.FlagEtcdEndpoints

// defaultWait bounds each command's wait for etcd (and for status, the
// dials).
const defaultWait = 5 * time.Second

// newFlagSet returns a flag set that reports to stderr and does not exit.
// Its usage (-h) goes to stdout: help is not an error.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cmctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cmctl %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and rejects positional arguments. For -h it
// prints the usage to stdout and returns flag.ErrHelp; for anything wrong
// it prints why and the usage to stderr and returns errUsage.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	stderr := fs.Output()
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(stdout)
			fs.Usage()
			fs.SetOutput(stderr)
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// registerEtcdFlags registers -etcd-endpoints and its short form -etcd on
// p.
func registerEtcdFlags(fs *flag.FlagSet, p *string, usage string) {
	fs.StringVar(p, flagEtcdEndpoints, "", usage)
	fs.StringVar(p, "etcd", "", "short for -"+flagEtcdEndpoints)
}

// etcdFlags are the flags of the commands that read a real etcd.
type etcdFlags struct {
	endpoints string
	root      string
	wait      time.Duration
	// sec are the -tls-* flags (status dials the nodes with them) and the
	// -etcd-* credentials.
	sec security.Flags
}

func (f *etcdFlags) register(fs *flag.FlagSet, waitUsage string) {
	registerEtcdFlags(fs, &f.endpoints, "etcd endpoints, host:port, comma-separated (required)")
	def := session.DefaultConfig().RootPath
	fs.StringVar(&f.root, examples.FlagRootPath, def, "etcd root path of the cluster's metadata")
	fs.StringVar(&f.root, "root", def, "short for -"+examples.FlagRootPath)
	fs.DurationVar(&f.wait, "wait", defaultWait, waitUsage)
	f.sec.Register(fs)
}

// sessionConfig checks the flags and returns the session configuration of
// the cluster, or an error naming the flag that is wrong.
func (f *etcdFlags) sessionConfig() (session.Config, error) {
	if len(splitList(f.endpoints)) == 0 {
		return session.Config{}, fmt.Errorf("-%s is required: host:port[,host:port...]", flagEtcdEndpoints)
	}
	if f.wait <= 0 {
		return session.Config{}, fmt.Errorf("-wait (%s) must be > 0", f.wait)
	}
	cfg := session.DefaultConfig()
	cfg.RootPath = strings.TrimRight(f.root, "/")
	if err := cfg.Validate(); err != nil {
		return session.Config{}, fmt.Errorf("-%s %q: %w", examples.FlagRootPath, f.root, err)
	}
	return cfg, nil
}

// connect returns a client of the endpoints once etcd answers, or an
// *etcdUnreachableError after -wait.
func (f *etcdFlags) connect(ctx context.Context) (*clientv3.Client, error) {
	eps := splitList(f.endpoints)
	ec := f.sec.Etcd(eps)
	ec.DialTimeout = f.wait
	cc, err := ec.ClientConfig(zap.NewNop(), session.EtcdDialOptions()...)
	if err != nil {
		return nil, err
	}
	cc.DialKeepAliveTime, cc.DialKeepAliveTimeout = 5*time.Second, 5*time.Second
	cli, err := clientv3.New(cc)
	if err != nil {
		if session.IsEtcdAuthError(err) {
			return nil, fmt.Errorf("%s: %w", ec, err) // names etcd and the user, never the password
		}
		return nil, &etcdUnreachableError{endpoints: eps, wait: f.wait, cause: err.Error()}
	}
	// The session prefix is all a read-only user may read: it is the
	// probe, and credentials etcd rejects are named as such.
	cfg, err := f.sessionConfig()
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	cfg.RequestTimeout = f.wait
	err = session.CheckEtcdAccess(ctx, cli, cfg)
	if err == nil {
		return cli, nil
	}
	_ = cli.Close()
	switch {
	case session.IsEtcdAuthError(err):
		return nil, fmt.Errorf("%s: %w", ec, err)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	return nil, &etcdUnreachableError{endpoints: eps, wait: f.wait, cause: diagnose(ctx, eps, err)}
}

// requireRole checks a -role flag.
func requireRole(role string) error {
	if role == "" {
		return errors.New("-role is required, such as -role querynode")
	}
	if err := session.ValidateRole(role); err != nil {
		return fmt.Errorf("-role: %w", err)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
