package session

import (
	"context"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

var errWatchEnded = errors.New("session: watch of the active key ended")

// contend runs while t is the current term of an exclusive role. It reads
// the active key and:
//   - held by t's lease: begins an active term when the lease is
//     acknowledged (see beginTerm) and watches the key, ending the term if
//     the key is deleted or taken by another lease;
//   - free: takes it (unless the process is stopping);
//   - held by another process: stands by, watching it until it is deleted.
//
// Every watch is re-read at least once a TTL, so a watch that went silent
// (a partitioned etcd member) is never trusted for long. Errors are retried
// with ReregisterBackoff; it never gives up while t lives.
func (r *Registration) contend(t *term) {
	failures, standing := 0, false
	for t.ctx.Err() == nil {
		kv, rev, err := r.readActive(t)
		if err == nil {
			switch {
			case kv != nil && clientv3.LeaseID(kv.Lease) == t.lease:
				standing = false
				if r.beginTerm(t) {
					err = r.watchActive(t, rev, true)
				} else {
					r.waitAck(t)
				}
			case kv == nil:
				var took, stop bool
				took, stop, err = r.tryActive(t)
				if stop {
					<-t.ctx.Done()
					return
				}
				if !took && err == nil {
					continue // taken meanwhile: read it again
				}
			default:
				if !standing {
					r.log.Info("standing by: the active key is held by another process",
						leaseField(t.lease), zap.Int64("active_lease_id", kv.Lease))
					standing = true
				}
				err = r.watchActive(t, rev, false)
			}
		}
		if err == nil {
			failures = 0
			continue
		}
		failures++
		r.setLastErr(t, err)
		if failures == 1 {
			r.log.Info("contending for the active key failed; retrying", zap.String("cause", errText(err)))
		}
		wait := r.o.clock.NewTimer(r.cfg.ReregisterBackoff.Delay(failures, r.rand()))
		select {
		case <-t.ctx.Done():
			wait.Stop()
			return
		case <-wait.Chan():
		}
	}
}

// readActive reads the active key: its kv (nil when free) and the
// revision read at.
func (r *Registration) readActive(t *term) (*mvccpb.KeyValue, int64, error) {
	rctx, cancel := context.WithTimeout(t.ctx, r.cfg.RequestTimeout)
	defer cancel()
	start := r.o.clock.Now()
	resp, err := r.cli.Get(rctx, r.cfg.ActiveKey(r.role))
	if err != nil {
		return nil, 0, errors.Wrap(err, "session: read the active key")
	}
	r.observeRTT(r.o.clock.Since(start))
	if len(resp.Kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	return resp.Kvs[0], resp.Header.Revision, nil
}

// waitAck waits for the next acknowledgement of t's lease, or t's end.
func (r *Registration) waitAck(t *term) {
	select {
	case <-t.ctx.Done():
	case <-t.ackEx:
	}
}

// tryActive takes the free active key for t under writeSem. stop is true
// when the Registration is stopping (a stopping process does not take
// over) or t is no longer current.
func (r *Registration) tryActive(t *term) (took, stop bool, err error) {
	if err := r.acquireWrite(t.ctx); err != nil {
		return false, true, nil
	}
	defer r.releaseWrite()
	r.mu.Lock()
	s, stopping, current := r.sess, r.stopping, r.cur == t && t.installed
	r.mu.Unlock()
	if stopping || !current {
		return false, true, nil
	}
	s.LeaseID = int64(t.lease)
	val, err := s.Encode()
	if err != nil {
		return false, true, err
	}
	took, _, err = r.claim(t.ctx, r.cfg.ActiveKey(r.role), val, t.lease, 0)
	if took {
		r.log.Info("took the active key", leaseField(t.lease))
	}
	return took, false, err
}

// beginTerm starts an active term for t — Tenure's active channel closes —
// if t is current, Connected, and its local lease deadline (last
// acknowledgement + TTL − fence margin) is ahead. It reports whether t is
// active.
func (r *Registration) beginTerm(t *term) bool {
	now := r.o.clock.Now()
	r.mu.Lock()
	if r.active {
		r.mu.Unlock()
		return true
	}
	ok := r.cur == t && t.installed && r.state == StateConnected && !r.stopping &&
		now.Before(t.lastAck.Add(t.ttl-r.fenceMargin(t.ttl)))
	if ok {
		close(r.activeCh)
		r.active = true
	}
	r.mu.Unlock()
	if ok {
		r.o.metrics.ActiveTerms.WithLabelValues(r.role).Inc()
		r.log.Info("active: holds the active key", leaseField(t.lease))
	}
	return ok
}

// fence ends the active term of an exclusive role, if there is one:
// Tenure's fenced channel closes, and a new pair of channels waits for the
// next term. t is the term that ended it (for the log).
func (r *Registration) fence(t *term, reason string) {
	r.mu.Lock()
	fenced := r.fenceLocked()
	r.mu.Unlock()
	if fenced {
		r.logFenced(t, reason)
	}
}

// fenceLocked is fence with r.mu held; it reports whether a term ended,
// and the caller then calls logFenced without the lock.
func (r *Registration) fenceLocked() bool {
	if !r.sess.Exclusive || !r.active {
		return false
	}
	close(r.fencedCh)
	r.activeCh, r.fencedCh, r.active = make(chan struct{}), make(chan struct{}), false
	return true
}

func (r *Registration) logFenced(t *term, reason string) {
	r.o.metrics.Fenced.WithLabelValues(r.role).Inc()
	r.log.Warn("fenced: no longer the active process", leaseField(t.lease), zap.String("reason", reason))
}

// watchActive watches the active key from rev+1. It returns nil to have
// the key read again: after a TTL, when the key is deleted or changes
// hands, or (ours) when the active term ended. When ours and the key is
// deleted or taken by another lease, the active term ends first.
func (r *Registration) watchActive(t *term, rev int64, ours bool) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(t.ctx))
	defer cancel()
	var fenced <-chan struct{}
	if ours {
		_, fenced = r.Tenure()
	}
	reread := r.o.clock.NewTimer(r.cfg.TTL)
	defer reread.Stop()
	wch := r.cli.Watch(ctx, r.cfg.ActiveKey(r.role), clientv3.WithRev(rev+1))
	for {
		select {
		case <-t.ctx.Done():
			return nil
		case <-fenced:
			return nil
		case <-reread.Chan():
			return nil
		case resp, ok := <-wch:
			if !ok {
				return errWatchEnded
			}
			if err := resp.Err(); err != nil {
				return errors.Wrap(err, "session: watch the active key")
			}
			for _, ev := range resp.Events {
				lost := ev.Type == clientv3.EventTypeDelete || clientv3.LeaseID(ev.Kv.Lease) != t.lease
				if ours && lost {
					r.fence(t, "the active key was deleted or taken by another lease")
				}
				if lost {
					return nil
				}
			}
		}
	}
}
