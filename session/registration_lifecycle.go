package session

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/retry"
)

// run owns the Registration's life: it waits for etcd to say the current
// lease is gone, reports it and registers again (or stops, under LostPolicy
// Exit). It returns when the Registration closes.
func (r *Registration) run(t *term) {
	defer r.wg.Done()
	for {
		var reason error
		select {
		case <-r.ctx.Done():
			t.stop()
			return
		case reason = <-t.gone:
		}
		t.stop()
		r.lose(t, reason)
		if r.cfg.LostPolicy == Exit {
			r.mu.Lock()
			r.err = ErrLeaseLost
			r.setStateLocked(StateClosed, ErrLeaseLost)
			r.mu.Unlock()
			r.closeDone()
			r.log.Error("registration ended: lease lost under LostPolicy exit", leaseField(t.lease))
			return
		}
		// Zero Attempts: never give up; Close ends it.
		p := retry.Policy{Backoff: r.cfg.ReregisterBackoff}
		next, err := r.establish(r.ctx, p, t.lease, false, retry.OnRetry(r.reregisterFailed))
		if err != nil {
			return // closed
		}
		r.install(next, true)
		// Revoked only once the new term is published: the keys moved.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), r.cfg.RequestTimeout)
		_ = r.revoke(rctx, t.lease) // it holds nothing now; if this fails it expires
		cancel()
		t = next
	}
}

// reregisterFailed counts, records and logs a failed re-registration
// attempt: every attempt is counted, the first and then every power of two
// is logged.
func (r *Registration) reregisterFailed(attempt int, err error, wait time.Duration) {
	r.o.metrics.ReregisterFails.WithLabelValues(r.role).Inc()
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
	if attempt&(attempt-1) == 0 {
		r.log.Warn("registering again failed; retrying", zap.Int("attempt", attempt),
			zap.String("cause", errText(err)), zap.Duration("next_in", wait))
	}
}

// install makes t the current term: Ready closes, Lost is open, the state
// is Connected, and the term's watchdog (and, for an exclusive role, its
// contention for the active key) starts. A Stopping mark that raced with
// the registration is written now.
func (r *Registration) install(t *term, again bool) {
	r.o.metrics.Registrations.WithLabelValues(r.role).Inc() // counted before anyone sees Ready
	r.mu.Lock()
	r.cur = t
	t.installed = true
	r.sess.LeaseID = int64(t.lease)
	r.leaseID.Store(int64(t.lease))
	r.lease = t.lease
	if r.lostClosed {
		r.lost, r.lostClosed = make(chan struct{}), false
	}
	if !r.registered {
		close(r.ready)
		r.registered = true
	}
	r.setStateLocked(StateConnected, nil)
	exclusive := r.sess.Exclusive
	if !exclusive && !r.active {
		close(r.activeCh)
		r.active = true
	}
	restamp := r.stopping && !t.putStopping
	r.mu.Unlock()

	msg := "registered"
	if again {
		msg = "registered again under a new lease, same incarnation"
	}
	r.log.Info(msg, leaseField(t.lease), zap.String("incarnation", r.incarnation), zap.Bool("exclusive", exclusive))
	r.goTerm(t, r.watchdog)
	if exclusive {
		if t.claimed {
			r.beginTerm(t)
		}
		r.goTerm(t, r.contend)
	}
	if restamp {
		r.goTerm(t, r.restampStopping)
	}
}

// restampStopping writes Stopping=true for a term whose value was encoded
// before MarkStopping ran.
func (r *Registration) restampStopping(t *term) {
	err := retry.Do(t.ctx, r.cfg.Retry, func(ctx context.Context) error {
		return r.writeStopping(ctx, t)
	}, retryOptions(r.o)...)
	if err != nil && t.ctx.Err() == nil {
		r.log.Warn("could not write Stopping after registering again", zap.String("cause", errText(err)))
	}
}

// lose reports that t's lease is gone: Lost closes, Ready is replaced by an
// open channel, the state is Reregistering and an active term ends.
func (r *Registration) lose(t *term, reason error) {
	r.o.metrics.LeasesLost.WithLabelValues(r.role).Inc() // counted before anyone sees Lost
	r.mu.Lock()
	t.installed = false
	if !r.lostClosed {
		close(r.lost)
		r.lostClosed = true
	}
	if r.registered {
		r.ready, r.registered = make(chan struct{}), false
	}
	fenced := r.fenceLocked()
	r.setStateLocked(StateReregistering, reason)
	r.mu.Unlock()
	if fenced {
		r.logFenced(t, "lease lost")
	}
	r.log.Warn("lease lost: etcd says it is gone", leaseField(t.lease),
		zap.String("reason", errText(reason)), zap.Stringer("policy", r.cfg.LostPolicy))
}

// setStateLocked moves to s, recording cause as LastError; r.mu is held.
func (r *Registration) setStateLocked(s State, cause error) {
	if cause != nil || s == StateConnected {
		r.lastErr = cause
	}
	if r.state == s {
		return
	}
	r.state = s
	close(r.changed)
	r.changed = make(chan struct{})
	r.o.metrics.State.WithLabelValues(r.role).Set(float64(s))
}

// setLastErr records err if t is the current term.
func (r *Registration) setLastErr(t *term, err error) {
	r.mu.Lock()
	if t.installed {
		r.lastErr = err
	}
	r.mu.Unlock()
}

// MarkStopping re-puts the session with Stopping=true, on the same lease,
// for every key this process holds (its own key, and the active key of an
// exclusive role), so watchers drain it before it goes. Each key is written
// only if it is still held by this Registration's lease. A standby stops
// contending. A registration under way when MarkStopping is called writes
// Stopping=true as soon as it is in place.
func (r *Registration) MarkStopping(ctx context.Context) error {
	if err := r.acquireWrite(ctx); err != nil {
		return err
	}
	defer r.releaseWrite()
	r.mu.Lock()
	r.stopping, r.sess.Stopping = true, true
	t, registered, exit := r.cur, r.registered, r.err
	r.mu.Unlock()
	if r.ctx.Err() != nil {
		return ErrClosed
	}
	if exit != nil {
		return exit
	}
	if !registered || t == nil {
		r.log.Info("marked stopping; the registration under way carries it")
		return nil
	}
	err := retry.Do(ctx, r.cfg.Retry, func(ctx context.Context) error {
		return r.writeStopping(ctx, t)
	}, retryOptions(r.o)...)
	if err != nil {
		return errors.Wrap(err, "session: mark stopping")
	}
	r.log.Info("marked stopping", leaseField(t.lease))
	return nil
}

// writeStopping puts the record with Stopping=true at every key t's lease
// holds. The caller holds writeSem, or runs before anyone else may write t.
func (r *Registration) writeStopping(ctx context.Context, t *term) error {
	r.mu.Lock()
	s, active := r.sess, r.active
	if t.putStopping {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	s.LeaseID = int64(t.lease)
	keys := []string{r.cfg.Key(r.role, s.ServerID)}
	if s.Exclusive && active {
		keys = append(keys, r.cfg.ActiveKey(r.role))
	}
	val, err := s.Encode()
	if err != nil {
		return retry.Unrecoverable(err)
	}
	if err := r.putIfHeld(ctx, keys, val, t.lease); err != nil {
		return err
	}
	r.mu.Lock()
	t.putStopping = true
	r.mu.Unlock()
	return nil
}

// putIfHeld puts val at every key, with lease, if lease holds them all.
func (r *Registration) putIfHeld(ctx context.Context, keys []string, val []byte, lease clientv3.LeaseID) error {
	cmps := make([]clientv3.Cmp, 0, len(keys))
	ops := make([]clientv3.Op, 0, len(keys))
	for _, k := range keys {
		cmps = append(cmps, clientv3.Compare(clientv3.LeaseValue(k), "=", lease))
		ops = append(ops, clientv3.OpPut(k, string(val), clientv3.WithLease(lease)))
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	resp, err := r.cli.Txn(rctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return errors.Wrap(err, "session: put")
	}
	if !resp.Succeeded {
		return retry.Unrecoverable(errors.Wrapf(ErrLeaseLost, "keys %v are no longer held by lease %x", keys, int64(lease)))
	}
	return nil
}

// Close stops the keepalive and every goroutine of the Registration (an
// active term ends first), then revokes the lease so its keys vanish at
// once. The revoke is bounded by ctx; if it fails the error is returned and
// the lease expires after its TTL. Close is idempotent and safe to call
// concurrently; later calls return the first call's result once it is done.
func (r *Registration) Close(ctx context.Context) error {
	first := false
	r.closeOnce.Do(func() { first = true })
	if !first {
		select {
		case <-r.closed:
			return r.closeErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	t := r.cur
	r.mu.Unlock()
	if t != nil {
		r.fence(t, "closing")
	}
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	lease := r.lease
	r.lease = 0
	r.setStateLocked(StateClosed, r.err)
	r.mu.Unlock()
	var err error
	if lease != 0 {
		err = r.revoke(ctx, lease)
	}
	r.closeDone()
	r.log.Info("registration closed", leaseField(lease), zap.String("revoke_error", errText(err)))
	r.closeErr = err
	close(r.closed)
	return err
}
