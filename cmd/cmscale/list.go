package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/coordkit/clientmanager/session"
)

// listResult is the measurement of one large role.
type listResult struct {
	sessions int
	put      time.Duration // writing the sessions, for reference

	list         time.Duration // session.List
	listErr      error
	listRequests int64
	listSlowest  time.Duration // the slowest Range request of the list

	sync         time.Duration // NewWatcher → Synced
	syncErr      error
	syncRequests int64
	syncSlowest  time.Duration
	syncFailed   int64  // Range requests that failed meanwhile
	perSession   uint64 // heap held by the synced watcher, per session
	timeout      time.Duration
}

// syncLimit bounds the wait for the watcher's initial sync.
const syncLimit = 3 * time.Minute

// measureList registers n sessions of one role, then times session.List
// of the role and a new Watcher's initial sync, and the heap the synced
// watcher holds per session.
func measureList(ctx context.Context, cl *cluster, n int) (listResult, error) {
	cfg := session.DefaultConfig()
	cfg.RootPath = "cmscale/list"
	res := listResult{sessions: n, timeout: cfg.RequestTimeout}
	start := time.Now()
	if err := putSessions(ctx, cl.cli, cfg, role, 1, n, func(id int64) string {
		return fmt.Sprintf("10.%d.%d.%d:19530", id>>16&255, id>>8&255, id&255)
	}); err != nil {
		return res, err
	}
	res.put = time.Since(start)

	cl.ranges.reset()
	start = time.Now()
	ss, _, err := session.List(ctx, cl.cli, cfg, role)
	res.list, res.listErr = time.Since(start), err
	res.listRequests, res.listSlowest = cl.ranges.n.Load(), cl.ranges.max()
	if err == nil && len(ss) != n {
		res.listErr = fmt.Errorf("listed %d sessions, want %d", len(ss), n)
	}
	ss = nil
	_ = ss

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cl.ranges.reset()
	start = time.Now()
	w, err := session.NewWatcher(cl.cli, cfg, session.DefaultWatchConfig(role))
	if err != nil {
		return res, err
	}
	defer w.Close()
	limit := time.NewTimer(syncLimit)
	defer limit.Stop()
	select {
	case <-w.Synced():
		res.sync = time.Since(start)
	case <-limit.C:
		res.syncErr = fmt.Errorf("not synced within %s", syncLimit)
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.syncRequests, res.syncSlowest, res.syncFailed = cl.ranges.n.Load(), cl.ranges.max(), cl.ranges.failed.Load()
	if res.syncErr == nil {
		if got := len(w.Sessions()); got != n {
			res.syncErr = fmt.Errorf("synced %d sessions, want %d", got, n)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if after.HeapAlloc > before.HeapAlloc {
			res.perSession = (after.HeapAlloc - before.HeapAlloc) / uint64(n)
		}
		runtime.KeepAlive(w)
	}
	return res, nil
}
