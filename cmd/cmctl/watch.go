package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/coordkit/clientmanager/session"
)

// cmdWatch prints the session events of a role until ctx ends: first one
// "add" per live session, then every change.
func cmdWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f etcdFlags
	var role string
	fs := newFlagSet("watch", "-etcd host:port[,...] -role R [-root by-dev/meta]", stderr)
	f.register(fs)
	fs.StringVar(&role, "role", "", "role to watch, such as querynode (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireRole(role); err != nil {
		return err
	}
	cfg, err := f.sessionConfig()
	if err != nil {
		return err
	}
	cli, err := f.client()
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()

	w, err := session.NewWatcher(cli, cfg, session.DefaultWatchConfig(role))
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	fmt.Fprintf(stdout, "watching %s (interrupt to stop)\n", cfg.RolePrefix(role))
	return printSessionEvents(ctx, stdout, w.Subscribe(ctx))
}

// printSessionEvents prints events as aligned lines until the channel is
// closed (ctx ended or the watcher closed).
func printSessionEvents(ctx context.Context, w io.Writer, events <-chan session.Event) error {
	for ev := range events {
		s := ev.Session
		fmt.Fprintf(w, "%s  %-6s  %s-%d  address=%s version=%s lease=%s stopping=%t exclusive=%t rev=%d\n",
			time.Now().Format("15:04:05.000"), ev.Type, s.ServerName, s.ServerID, orDash(s.Address),
			orDash(s.Version), leaseString(s.LeaseID), s.Stopping, s.Exclusive, ev.Revision)
	}
	if ctx.Err() != nil {
		return nil // interrupted: the normal end
	}
	return fmt.Errorf("the watcher stopped")
}
