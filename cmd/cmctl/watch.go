package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/session"
)

// cmdWatch prints the session events of a role until ctx ends: first one
// "add" per live session, then every change. While etcd does not answer
// it says so on stderr, at least every -wait, and again when it is back.
func cmdWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f etcdFlags
	var role string
	fs := newFlagSet("watch", "-etcd-endpoints host:port[,...] -role R [-root-path by-dev/meta] [-wait 5s]", stderr)
	f.register(fs, "how long etcd may not answer before watch says so on stderr (and again every -wait)")
	fs.StringVar(&role, "role", "", "role to watch, such as querynode (required)")
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
	cli, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	wc := session.DefaultWatchConfig(role)
	wc.ProgressInterval = min(wc.ProgressInterval, f.wait)
	w, err := session.NewWatcher(cli, cfg, wc)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	fmt.Fprintf(stdout, "watching %s (interrupt to stop)\n", cfg.RolePrefix(role))

	mctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { monitorEtcd(mctx, cli, splitList(f.endpoints), f.wait, stderr) })
	err = printSessionEvents(ctx, stdout, w.Subscribe(ctx))
	stop()
	wg.Wait()
	return err
}

// monitorEtcd checks every wait/2 that etcd answers (each check bounded
// by wait/2). When it stops answering it prints why on stderr, again
// every wait while it does not, and once when it is back.
func monitorEtcd(ctx context.Context, cli *clientv3.Client, endpoints []string, wait time.Duration, stderr io.Writer) {
	every := max(wait/2, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var downSince, told time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := checkEtcd(ctx, cli, endpoints, every)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		cause := ""
		if ue := (*etcdUnreachableError)(nil); errors.As(err, &ue) {
			cause = ue.cause
		} else if err != nil {
			cause = err.Error()
		}
		where := strings.Join(endpoints, ",")
		switch {
		case err != nil && downSince.IsZero():
			downSince, told = now.Add(-every), now
			fmt.Fprintf(stderr, "%s  lost etcd at %s: %s\n", now.Format("15:04:05.000"), where, cause)
		case err != nil && now.Sub(told) >= wait:
			told = now
			fmt.Fprintf(stderr, "%s  still no etcd at %s, for %s: %s\n", now.Format("15:04:05.000"), where,
				now.Sub(downSince).Round(time.Second), cause)
		case err == nil && !downSince.IsZero():
			fmt.Fprintf(stderr, "%s  etcd is back at %s after %s\n", now.Format("15:04:05.000"),
				where, now.Sub(downSince).Round(time.Millisecond))
			downSince = time.Time{}
		}
	}
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
