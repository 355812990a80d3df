package session

import (
	"context"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

var errWatchEnded = errors.New("session: watch of the active key ended")

// standby waits for the active key to be deleted and tries to take it,
// until it does, the incarnation ends or the Registration starts stopping.
// It never gives up on errors: it retries with ReregisterBackoff.
func (r *Registration) standby(inc *incarnation) {
	defer r.wg.Done()
	defer close(inc.standbyDone)
	r.log.Info("standing by: the active key is held by another process", leaseField(inc.lease))
	rev, failures := inc.standRev, 0
	for {
		var err error
		if rev > 0 {
			err = r.waitActiveFree(inc.ctx, rev)
		}
		if inc.ctx.Err() != nil {
			return
		}
		if err == nil {
			var took, stop bool
			took, stop, rev, err = r.tryActive(inc)
			if took || stop || inc.ctx.Err() != nil {
				return
			}
		}
		if err == nil {
			failures = 0
			continue
		}
		rev = 0 // read again before watching
		failures++
		if failures == 1 {
			r.log.Warn("standby: contending for the active key failed; retrying", zap.Error(err))
		}
		wait := r.o.clock.NewTimer(r.cfg.ReregisterBackoff.Backoff(failures, r.rand()))
		select {
		case <-inc.ctx.Done():
			wait.Stop()
			return
		case <-wait.Chan():
		}
	}
}

// tryActive takes the active key for inc under writeSem. stop is true when
// the Registration is stopping (a stopping process does not take over) or
// inc is no longer current.
func (r *Registration) tryActive(inc *incarnation) (took, stop bool, rev int64, err error) {
	if err := r.acquireWrite(inc.ctx); err != nil {
		return false, true, 0, nil
	}
	defer r.releaseWrite()
	r.mu.Lock()
	s, stopping, current := r.sess, r.stopping, r.cur == inc
	r.mu.Unlock()
	if stopping || !current {
		return false, true, 0, nil
	}
	val, err := s.Encode()
	if err != nil {
		return false, true, 0, err
	}
	took, rev, err = r.claim(inc.ctx, r.cfg.ActiveKey(r.role), val, inc.lease, 0)
	if !took || err != nil {
		return false, false, rev, err
	}
	r.mu.Lock()
	if r.cur == inc && !r.active {
		close(r.activeCh)
		r.active = true
	}
	r.mu.Unlock()
	r.log.Info("active: took the active key", leaseField(inc.lease))
	return true, false, 0, nil
}

// waitActiveFree watches the active key from rev+1 and returns nil when it
// is deleted, or an error when the watch breaks.
func (r *Registration) waitActiveFree(ctx context.Context, rev int64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := r.cli.Watch(ctx, r.cfg.ActiveKey(r.role), clientv3.WithRev(rev+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return errors.Wrap(err, "session: watch the active key")
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return nil
			}
		}
	}
	return errWatchEnded
}
