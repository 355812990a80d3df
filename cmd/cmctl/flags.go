package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/session"
)

// errUsage is returned when the flags of a command are wrong; the flag set
// has printed why and the command's usage.
var errUsage = errors.New("usage")

// newFlagSet returns a flag set that reports to stderr and does not exit.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cmctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cmctl %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and rejects positional arguments. It returns
// flag.ErrHelp for -h and errUsage for anything wrong.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// etcdFlags are the flags of the commands that read a real etcd.
type etcdFlags struct {
	endpoints string
	root      string
}

func (f *etcdFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.endpoints, "etcd", "", "etcd endpoints, host:port, comma-separated (required)")
	fs.StringVar(&f.root, "root", session.DefaultConfig().RootPath, "etcd root path of the cluster's metadata")
}

// sessionConfig returns the session configuration of the cluster, or an
// error naming the flag that is wrong.
func (f *etcdFlags) sessionConfig() (session.Config, error) {
	if len(splitList(f.endpoints)) == 0 {
		return session.Config{}, errors.New("-etcd is required: host:port[,host:port...]")
	}
	cfg := session.DefaultConfig()
	cfg.RootPath = strings.TrimRight(f.root, "/")
	if err := cfg.Validate(); err != nil {
		return session.Config{}, fmt.Errorf("-root %q: %w", f.root, err)
	}
	return cfg, nil
}

// client connects to the endpoints; requests fail after their own
// timeouts when etcd cannot be reached.
func (f *etcdFlags) client() (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            splitList(f.endpoints),
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", f.endpoints, err)
	}
	return cli, nil
}

// requireRole checks a -role flag.
func requireRole(role string) error {
	if role == "" {
		return errors.New("-role is required, such as -role querynode")
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
