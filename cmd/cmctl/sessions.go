package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/session"
)

// cmdSessions lists the sessions of one role, or of every role.
func cmdSessions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f etcdFlags
	var role string
	fs := newFlagSet("sessions", "-etcd-endpoints host:port[,...] [-root-path by-dev/meta] [-role R] [-wait 5s]", stderr)
	f.register(fs, "how long to wait for etcd to answer")
	fs.StringVar(&role, "role", "", "role to list, such as querynode; empty lists every role")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := f.sessionConfig()
	if err != nil {
		return err
	}
	cli, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()

	lctx, cancel := context.WithTimeout(ctx, f.wait)
	defer cancel()
	var ss []session.Session
	if role != "" {
		ss, _, err = session.List(lctx, cli, cfg, role)
	} else {
		ss, err = listAllSessions(lctx, cli, cfg, stderr)
	}
	if err != nil {
		if ctx.Err() == nil && lctx.Err() != nil { // etcd answered the check, then went away
			return checkEtcd(ctx, cli, splitList(f.endpoints), f.wait)
		}
		return fmt.Errorf("etcd %s: %w", f.endpoints, err)
	}
	if len(ss) == 0 {
		where := cfg.Prefix() + "/"
		if role != "" {
			where = cfg.RolePrefix(role)
		}
		fmt.Fprintf(stdout, "no sessions under %s\n", where)
		return nil
	}
	return writeSessions(stdout, ss)
}

// listAllSessions reads every key under <root>/session/ but the ServerID
// counter, decodes each record and returns each process once, sorted by
// role and ServerID. An active exclusive process holds two keys (<role>
// and <role>-<ServerID>); the record written last is kept. A value that
// does not decode is reported to warn and skipped.
func listAllSessions(ctx context.Context, cli *clientv3.Client, cfg session.Config, warn io.Writer) ([]session.Session, error) {
	rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	resp, err := cli.Get(rctx, cfg.Prefix()+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list %s/: %w", cfg.Prefix(), err)
	}
	type process struct {
		role string
		id   int64
	}
	type found struct {
		s   session.Session
		rev int64
	}
	byProcess := make(map[process]found, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		if key == cfg.IDKey() {
			continue
		}
		s, err := session.Decode(kv.Value)
		if err != nil {
			fmt.Fprintf(warn, "skipping %s: %v\n", key, err)
			continue
		}
		if s.ServerName == "" {
			s.ServerName = roleOfKey(strings.TrimPrefix(key, cfg.Prefix()+"/"))
		}
		p := process{s.ServerName, s.ServerID}
		if prev, ok := byProcess[p]; !ok || kv.ModRevision > prev.rev {
			byProcess[p] = found{s, kv.ModRevision}
		}
	}
	out := make([]session.Session, 0, len(byProcess))
	for _, f := range byProcess {
		out = append(out, f.s)
	}
	slices.SortFunc(out, func(a, b session.Session) int {
		return cmp.Or(cmp.Compare(a.ServerName, b.ServerName), cmp.Compare(a.ServerID, b.ServerID))
	})
	return out, nil
}

// roleOfKey returns the role of a key's last part: "querynode-7" and
// "rootcoord" give "querynode" and "rootcoord".
func roleOfKey(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.ParseInt(name[i+1:], 10, 64); err == nil {
			return name[:i]
		}
	}
	return name
}
