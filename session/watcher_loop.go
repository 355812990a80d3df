package session

import (
	"context"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Reasons for a re-list: the values of the Resyncs metric's reason label.
const (
	reasonInitial   = "initial"   // the first list, not counted as a resync
	reasonCompacted = "compacted" // the watch's start revision was compacted
	reasonNoLeader  = "no_leader" // the member lost its leader (WithRequireLeader)
	reasonCanceled  = "canceled"  // etcd cancelled the watch for another reason
	reasonClient    = "client"    // the client's own context ended (client closed)
	reasonClosed    = "closed"    // the channel closed without a response saying why
	reasonStale     = "stale"     // silent watch while the store moved, or etcd unreachable
)

// watchBreak says why a watch ended.
type watchBreak struct {
	reason string
	err    error
}

// run is the watcher's loop: list, watch, and after any break list again,
// until Close. It never returns for another reason.
func (w *Watcher) run(ctx context.Context) {
	defer w.wg.Done()
	brk, attempt := watchBreak{reason: reasonInitial}, 0
	for {
		rev, n, ok := w.resync(ctx, brk, attempt)
		if !ok {
			return
		}
		var progressed bool
		brk, progressed = w.watch(ctx, rev)
		if ctx.Err() != nil {
			return
		}
		// A watch that broke before any response keeps the backoff
		// growing, so a list that works beside a watch that does not
		// cannot spin.
		attempt = n
		if progressed {
			attempt = 0
		}
	}
}

// resync lists the role until a list succeeds, waiting a jittered
// ResyncBackoff before each attempt but the initial list's first, applies
// the difference to the known set and emits it. attempt is the number of
// attempts already made without progress. While lists fail the known set
// stays as it is. It reports the list's revision and the attempt count
// reached, or false when ctx ended.
func (w *Watcher) resync(ctx context.Context, brk watchBreak, attempt int) (int64, int, bool) {
	initial := brk.reason == reasonInitial
	start := w.o.clock.Now()
	if !initial {
		w.m.resyncs.WithLabelValues(brk.reason).Inc()
		w.log.Info("session watch broken, re-listing", zap.String("reason", brk.reason),
			zap.Error(brk.err), zap.Int64("revision", w.Revision()), zap.Int("known", len(w.st.shown)))
	}
	n, failures := attempt, 0
	for first := true; ; first = false {
		if !initial || !first {
			n++
			if !w.sleep(ctx, w.wc.ResyncBackoff.Delay(n, w.o.rand())) {
				return 0, n, false
			}
		}
		rev, err := listRole(ctx, w.cli, w.cfg, w.wc.Role, w.wc.ListPageSize, w.st)
		if err != nil {
			if ctx.Err() != nil {
				return 0, n, false
			}
			failures++
			if IsEtcdAuthError(err) {
				w.refused(err)
				continue
			}
			if failures == 1 {
				w.log.Warn("session list failed, keeping the last known set; retrying with backoff",
					zap.Error(err), zap.Int("known", len(w.st.shown)))
			}
			continue
		}
		w.accepted()
		// Publish before moving the revision: whenever Revision returns R,
		// Sessions reflects at least R.
		evs := w.st.endList(rev)
		w.emit(evs)
		w.touch(rev)
		add, upd, del := countTypes(evs)
		fields := []zap.Field{zap.Int64("revision", rev), zap.Int("sessions", len(w.st.shown)),
			zap.Int("added", add), zap.Int("updated", upd), zap.Int("deleted", del),
			zap.Int("failed_attempts", failures), zap.Duration("took", w.o.clock.Since(start))}
		if initial {
			close(w.synced)
			w.log.Info("session watcher synced", fields...)
		} else {
			w.log.Info("session watch resynced", append(fields, zap.String("reason", brk.reason))...)
		}
		return rev, n, true
	}
}

// watch follows the role from rev+1 until the watch breaks or ctx ends,
// and reports why it ended and whether any response arrived.
func (w *Watcher) watch(ctx context.Context, rev int64) (brk watchBreak, progressed bool) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	// The client's Watch returns only once etcd created the watch: start it
	// aside, so that the idle check also covers an etcd that never answers.
	started := make(chan clientv3.WatchChan, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		started <- w.cli.Watch(wctx, w.cfg.RolePrefix(w.wc.Role), clientv3.WithPrefix(), clientv3.WithRev(rev+1),
			clientv3.WithProgressNotify())
	}()
	defer func() {
		cancel()
		<-exited
	}()
	var wch clientv3.WatchChan // nil, so not selected, until created
	var tick <-chan time.Time
	if iv := w.wc.ProgressInterval; iv > 0 {
		t := w.o.clock.NewTicker(iv)
		defer t.Stop()
		tick = t.Chan()
	}
	ic := idleCheck{last: w.o.clock.Now()}
	for {
		select {
		case <-ctx.Done():
			return watchBreak{}, progressed
		case wch = <-started:
		case <-tick:
			if err := w.checkIdle(wctx, &ic); err != nil {
				return watchBreak{reason: reasonStale, err: err}, progressed
			}
		case resp, ok := <-wch:
			if !ok {
				return watchBreak{reason: reasonClosed}, progressed
			}
			if brk := breakOf(&resp); brk.reason != "" {
				return brk, progressed
			}
			progressed = true
			ic = idleCheck{last: w.o.clock.Now()}
			w.apply(resp.Events)
			w.touch(resp.Header.Revision)
		}
	}
}

// apply applies one watch response's events, a revision (a transaction)
// at a time, and emits the differences.
func (w *Watcher) apply(events []*clientv3.Event) {
	var evs []Event
	for i, e := range events {
		w.st.applyEvent(e)
		if i == len(events)-1 || events[i+1].Kv.ModRevision != e.Kv.ModRevision {
			evs = append(evs, w.st.flush(e.Kv.ModRevision)...)
		}
	}
	w.emit(evs)
}

// idleCheck keeps a silent watch honest; see WatchConfig.ProgressInterval.
type idleCheck struct {
	last    time.Time // last watch response or confirmed revision
	ahead   int64     // store revision found ahead of the silent watch; 0: none
	aheadAt time.Time
}

// checkIdle runs on every ProgressInterval tick. While the watch is silent
// it asks for a progress notification each interval. etcd sends none while
// nothing was written since the watch's start revision, so after three
// silent intervals it reads the store's revision: unchanged means the known
// set is current. A store found ahead must be answered by the watch within
// two more intervals; if it is not, or etcd does not answer the read, the
// watch is stale.
func (w *Watcher) checkIdle(ctx context.Context, ic *idleCheck) error {
	iv := w.wc.ProgressInterval
	now := w.o.clock.Now()
	idle := now.Sub(ic.last)
	if idle < iv {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, min(iv, w.cfg.RequestTimeout))
	_ = w.cli.RequestProgress(pctx) // the answer, if any, arrives on the watch
	cancel()
	switch {
	case idle < 3*iv:
		return nil
	case ic.ahead != 0:
		if now.Sub(ic.aheadAt) >= 2*iv {
			return errors.Newf("session: store at revision %d, silent watch at %d", ic.ahead, w.Revision())
		}
		return nil
	}
	// Only the header's revision is needed: count one key, the role's
	// active key, rather than range over the role. The read is
	// linearizable, so the revision is the store's.
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	resp, err := w.cli.Get(rctx, w.cfg.ActiveKey(w.wc.Role), clientv3.WithCountOnly())
	if err != nil {
		return errors.Wrap(err, "session: revision check")
	}
	if rev := resp.Header.Revision; rev != w.Revision() {
		ic.ahead, ic.aheadAt = rev, w.o.clock.Now()
		return nil
	}
	ic.last = w.o.clock.Now()
	w.touch(resp.Header.Revision)
	return nil
}

// breakOf classifies a response that ends the watch; the zero value means
// the response is ordinary.
func breakOf(resp *clientv3.WatchResponse) watchBreak {
	err := resp.Err()
	switch {
	case resp.CompactRevision != 0:
		return watchBreak{reason: reasonCompacted, err: err}
	case err == nil && !resp.Canceled:
		return watchBreak{}
	case errors.Is(err, rpctypes.ErrNoLeader):
		return watchBreak{reason: reasonNoLeader, err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return watchBreak{reason: reasonClient, err: err}
	}
	return watchBreak{reason: reasonCanceled, err: err}
}

// sleep waits d on the watcher's clock; false when ctx ended first.
func (w *Watcher) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := w.o.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.Chan():
		return true
	}
}

func countTypes(evs []Event) (add, upd, del int) {
	for _, ev := range evs {
		switch ev.Type {
		case EventAdd:
			add++
		case EventUpdate:
			upd++
		case EventDel:
			del++
		}
	}
	return add, upd, del
}

// Err returns why the watcher cannot read its role: etcd refused its
// credentials or permissions on the last list (IsEtcdAuthError: a wrong
// password, a user without read permission on the role's prefix). The
// error names etcd's endpoints, the prefix and etcd's cause. It is nil
// before such a refusal and again once a list succeeds: the watcher keeps
// listing with ResyncBackoff, so credentials fixed in etcd (a permission
// granted) are picked up without a restart, but every refusal after a
// success is logged at error level, never retried silently.
func (w *Watcher) Err() error { return w.access.get() }

// Refused returns a channel closed once Err is not nil; after Err clears,
// a new channel, open until the next refusal.
func (w *Watcher) Refused() <-chan struct{} { return w.access.wait() }

// refused records that etcd refused the list with err, logging it at
// error level when it is the first refusal since a success or a new
// cause.
func (w *Watcher) refused(err error) {
	werr := errors.Wrapf(err, "session: etcd %v refused the credentials of the watcher of role %q reading %s",
		w.cli.Endpoints(), w.wc.Role, w.cfg.RolePrefix(w.wc.Role))
	if w.access.set(werr) {
		w.log.Error("etcd refused the session watcher's credentials; retrying with backoff until they are fixed",
			zap.Strings("etcd", w.cli.Endpoints()), zap.String("prefix", w.cfg.RolePrefix(w.wc.Role)),
			zap.Error(err), zap.Int("known", len(w.st.shown)))
	}
}

// accepted clears a recorded refusal after a list succeeded.
func (w *Watcher) accepted() {
	if w.access.clear() {
		w.log.Info("etcd accepts the session watcher's credentials again")
	}
}

// accessState is etcd's refusal of a watcher's credentials, when its last
// list met one.
type accessState struct {
	mu      sync.Mutex
	err     error
	refused chan struct{} // closed while err != nil; nil until wait
}

func (a *accessState) get() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *accessState) wait() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refused == nil {
		a.refused = make(chan struct{})
		if a.err != nil {
			close(a.refused)
		}
	}
	return a.refused
}

// set records err and reports whether it is news: no refusal was
// recorded, or one with another cause.
func (a *accessState) set(err error) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	news := a.err == nil || errors.UnwrapAll(a.err).Error() != errors.UnwrapAll(err).Error()
	if a.err == nil && a.refused != nil {
		close(a.refused)
	}
	a.err = err
	return news
}

// clear forgets the refusal and reports whether there was one.
func (a *accessState) clear() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		return false
	}
	a.err = nil
	a.refused = nil // the next wait makes an open channel
	return true
}
