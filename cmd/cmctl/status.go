package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/session"
)

// statusPoll is how often cmdStatus looks whether the dials are done.
const statusPoll = 50 * time.Millisecond

// cmdStatus connects a client manager to every node of a role, waits until
// each listed node is dialed (or -wait elapses) and prints the manager's
// view of them.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f etcdFlags
	var role string
	fs := newFlagSet("status", "-etcd-endpoints host:port[,...] -role R [-root-path by-dev/meta] [-wait 5s]", stderr)
	f.register(fs, "how long to wait for etcd to answer, then for the nodes to be dialed")
	fs.StringVar(&role, "role", "", "role to connect to, such as querynode (required)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if err := requireRole(role); err != nil {
		return err
	}
	cfg, err := f.sessionConfig()
	if err != nil {
		return err
	}
	tl, err := f.sec.TLS() // -tls-*: the nodes are dialed with mutual TLS
	if err != nil {
		return err
	}
	cli, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	return printRoleStatus(ctx, stdout, cli, cfg, role, f.wait, tl)
}

// printRoleStatus is the body of cmdStatus.
func printRoleStatus(ctx context.Context, w io.Writer, cli *clientv3.Client, cfg session.Config, role string, wait time.Duration, tl *security.TLS) error {
	lctx, cancel := context.WithTimeout(ctx, wait)
	listed, _, err := session.List(lctx, cli, cfg, role)
	cancel()
	if err != nil {
		return err
	}
	mc := clientmanager.DefaultConfig()
	mc.SessionConfig = cfg
	mc.DialTimeout = wait
	mc.TLS = tl
	m, err := clientmanager.New(cli, mc)
	if err != nil {
		return err
	}
	defer func() { _ = m.Close() }()
	if err := m.AddDependency(role); err != nil {
		return err
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	synced := waitDialed(wctx, m, listed)
	if ctx.Err() != nil {
		return nil // interrupted
	}
	note := ""
	if !synced {
		note = fmt.Sprintf(" (not every node dialed within -wait %s)", wait)
	}
	fmt.Fprintf(w, "role %s: %d listed in etcd, %d available after %s%s\n",
		role, len(listed), len(m.GetClients(role)), time.Since(start).Round(time.Millisecond), note)
	st := m.Status()
	if len(st) == 0 {
		fmt.Fprintln(w, "no nodes")
	} else if err := writeStatus(w, "", st, time.Now()); err != nil {
		return err
	}
	v := m.RoleHealth(role)
	fmt.Fprintf(w, "health: %s", v.Health)
	if len(v.Reasons) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(v.Reasons, "; "))
	}
	fmt.Fprintln(w)
	return nil
}

// waitDialed reports whether every listed node reached a state other than
// connecting before ctx ended.
func waitDialed(ctx context.Context, m *clientmanager.Manager, listed []session.Session) bool {
	t := time.NewTicker(statusPoll)
	defer t.Stop()
	for {
		if dialed(m.Status(), listed) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func dialed(st []clientmanager.NodeStatus, listed []session.Session) bool {
	done := make(map[int64]bool, len(st))
	for _, n := range st {
		done[n.NodeID] = n.State != clientmanager.NodeConnecting
	}
	for _, s := range listed {
		if !done[s.ServerID] {
			return false
		}
	}
	return true
}
