package session

import (
	"context"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/retry"
)

// run owns the Registration's life: it keeps the current incarnation
// alive, and when its lease is lost reports it and registers again (or
// stops, under LostPolicy Exit). It returns when the Registration closes.
func (r *Registration) run(inc *incarnation) {
	defer r.wg.Done()
	for {
		reason := r.keepAlive(inc)
		inc.stop()
		if reason == nil || r.ctx.Err() != nil {
			return
		}
		r.lose(inc, reason)
		if r.cfg.LostPolicy == Exit {
			r.mu.Lock()
			r.err = ErrLeaseLost
			r.mu.Unlock()
			r.closeDone()
			r.log.Error("registration ended: lease lost under LostPolicy exit", leaseField(inc.lease))
			return
		}
		p := r.cfg.ReregisterBackoff
		p.Attempts = 0 // never give up; Close ends it
		next, err := r.establish(r.ctx, p, inc.lease)
		if err != nil {
			return // closed
		}
		r.install(next, true)
		inc = next
	}
}

// install makes inc the current incarnation: Ready (and, unless the role is
// exclusive and standing by, Active) close, Lost is open, and a standby
// starts contending for the active key.
func (r *Registration) install(inc *incarnation, again bool) {
	inc.ctx, inc.cancel = context.WithCancel(r.ctx)
	r.o.metrics.Registrations.WithLabelValues(r.role).Inc() // counted before anyone sees Ready
	r.mu.Lock()
	r.cur = inc
	r.sess.LeaseID = int64(inc.lease)
	r.leaseID.Store(int64(inc.lease))
	r.lease = inc.lease
	if r.lostClosed {
		r.lost, r.lostClosed = make(chan struct{}), false
	}
	if !r.registered {
		close(r.ready)
		r.registered = true
	}
	exclusive := r.sess.Exclusive
	stopping := r.stopping
	if (!exclusive || inc.active) && !r.active {
		close(r.activeCh)
		r.active = true
	}
	r.mu.Unlock()

	msg := "registered"
	if again {
		msg = "registered again after a lost lease"
	}
	r.log.Info(msg, leaseField(inc.lease), zap.Bool("exclusive", exclusive), zap.Bool("active", !exclusive || inc.active))
	if exclusive && !inc.active && !stopping {
		inc.standbyDone = make(chan struct{})
		r.wg.Add(1)
		go r.standby(inc)
	}
}

// lose reports that inc's lease is lost: Lost closes, Ready and Active are
// replaced by open channels.
func (r *Registration) lose(inc *incarnation, reason error) {
	r.o.metrics.LeasesLost.WithLabelValues(r.role).Inc() // counted before anyone sees Lost
	r.mu.Lock()
	if !r.lostClosed {
		close(r.lost)
		r.lostClosed = true
	}
	if r.registered {
		r.ready, r.registered = make(chan struct{}), false
	}
	if r.active {
		r.activeCh, r.active = make(chan struct{}), false
	}
	r.mu.Unlock()
	r.log.Warn("lease lost", leaseField(inc.lease), zap.NamedError("reason", reason),
		zap.Stringer("policy", r.cfg.LostPolicy))
}

// MarkStopping re-puts the session with Stopping=true, on the same lease,
// for every key this process holds (its own key, and the active key of an
// exclusive role), so watchers drain it before it goes. Each key is written
// only if it is still held by this Registration's lease. A standby stops
// contending. Re-registrations after MarkStopping carry Stopping=true.
func (r *Registration) MarkStopping(ctx context.Context) error {
	if err := r.acquireWrite(ctx); err != nil {
		return err
	}
	defer r.releaseWrite()
	r.mu.Lock()
	r.stopping, r.sess.Stopping = true, true
	s, registered, active, exit := r.sess, r.registered, r.active, r.err
	r.mu.Unlock()
	if r.ctx.Err() != nil {
		return ErrClosed
	}
	if exit != nil {
		return exit
	}
	if !registered {
		r.log.Info("marked stopping; the next registration carries it")
		return nil
	}
	keys := []string{r.cfg.Key(r.role, s.ServerID)}
	if s.Exclusive && active {
		keys = append(keys, r.cfg.ActiveKey(r.role))
	}
	val, err := s.Encode()
	if err != nil {
		return err
	}
	lease := clientv3.LeaseID(s.LeaseID)
	err = retry.Do(ctx, r.cfg.Retry, func(ctx context.Context) error {
		return r.putIfHeld(ctx, keys, val, lease)
	}, retryOptions(r.o)...)
	if err != nil {
		return errors.Wrap(err, "session: mark stopping")
	}
	r.log.Info("marked stopping", leaseField(lease), zap.Strings("keys", keys))
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

// Close stops the keepalive and every goroutine of the Registration, then
// revokes the lease so its keys vanish at once. The revoke is bounded by
// ctx; if it fails the error is returned and the lease expires after its
// TTL. Close is idempotent and safe to call concurrently; later calls
// return the first call's result once it is done.
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
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	lease := r.lease
	r.lease = 0
	r.mu.Unlock()
	var err error
	if lease != 0 {
		err = r.revoke(ctx, lease)
	}
	r.closeDone()
	r.log.Info("registration closed", leaseField(lease), zap.Error(err))
	r.closeErr = err
	close(r.closed)
	return err
}
