package session

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/retry"
)

// incarnation is one lease of a Registration: the keys written with it and
// the goroutines that serve it. A lost lease ends the incarnation; a
// re-registration starts a new one under the same ServerID.
type incarnation struct {
	lease   clientv3.LeaseID
	ttl     time.Duration // granted by etcd, which may round the asked TTL up
	granted time.Time     // clock time the grant was acknowledged

	active   bool  // took the active key while registering
	standRev int64 // revision at which the active key was seen held

	ctx         context.Context // ends with the incarnation or the Registration
	cancel      context.CancelFunc
	standbyDone chan struct{} // closed when the standby goroutine ended; nil if none
}

// stop ends the incarnation's goroutines other than the caller and waits.
func (inc *incarnation) stop() {
	inc.cancel()
	if inc.standbyDone != nil {
		<-inc.standbyDone
	}
}

// establish registers a new incarnation under policy. old, when non-zero,
// is the lost lease of the previous incarnation: keys it still holds are
// moved to the new lease (watchers see an update, not a delete and an add),
// and it is revoked once the new incarnation is registered.
func (r *Registration) establish(ctx context.Context, p retry.Policy, old clientv3.LeaseID) (*incarnation, error) {
	var inc *incarnation
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		var err error
		inc, err = r.registerOnce(ctx, old)
		return err
	}, retryOptions(r.o)...)
	if err != nil {
		return nil, err
	}
	if old != 0 {
		_ = r.revoke(ctx, old) // it holds nothing now; if this fails it expires
	}
	return inc, nil
}

// registerOnce grants a lease, replaces stale sessions at this address,
// puts the session key if absent (or held by old) and, for an exclusive
// role, tries once to take the active key. On failure the granted lease
// is revoked.
func (r *Registration) registerOnce(ctx context.Context, old clientv3.LeaseID) (_ *incarnation, err error) {
	lease, ttl, err := r.grant(ctx)
	if err != nil {
		return nil, err
	}
	granted := r.o.clock.Now()
	defer func() {
		if err != nil && ctx.Err() == nil {
			_ = r.revoke(ctx, lease) // otherwise Close revokes it, or it expires
		}
	}()
	if r.cfg.ReplaceStale {
		if err := r.replaceStale(ctx, lease, old); err != nil {
			return nil, err
		}
	}
	if err := r.acquireWrite(ctx); err != nil {
		return nil, err
	}
	defer r.releaseWrite()

	r.mu.Lock()
	s := r.sess
	stopping := r.stopping
	r.mu.Unlock()
	s.LeaseID = int64(lease)
	val, err := s.Encode()
	if err != nil {
		return nil, retry.Unrecoverable(err)
	}
	key := r.cfg.Key(r.role, s.ServerID)
	held, _, err := r.claim(ctx, key, val, lease, old)
	switch {
	case err != nil:
		return nil, err
	case !held:
		return nil, errors.Wrapf(ErrKeyExists, "%s is held by another lease", key)
	}
	inc := &incarnation{lease: lease, ttl: ttl, granted: granted}
	if s.Exclusive && !stopping {
		inc.active, inc.standRev, err = r.claim(ctx, r.cfg.ActiveKey(r.role), val, lease, old)
		if err != nil {
			return nil, err
		}
	}
	return inc, nil
}

func (r *Registration) grant(ctx context.Context) (clientv3.LeaseID, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	resp, err := r.cli.Grant(rctx, int64(r.cfg.TTL/time.Second))
	if err != nil {
		return 0, 0, errors.Wrap(err, "session: grant lease")
	}
	r.mu.Lock()
	r.lease = resp.ID
	r.mu.Unlock()
	return resp.ID, time.Duration(resp.TTL) * time.Second, nil
}

// revoke revokes lease; a lease already gone is not an error.
func (r *Registration) revoke(ctx context.Context, lease clientv3.LeaseID) error {
	if err := r.cli.Ctx().Err(); err != nil {
		// A closed client would only wait for the timeout.
		return errors.Wrapf(err, "session: revoke lease %x: client closed", int64(lease))
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	_, err := r.cli.Revoke(rctx, lease)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return errors.Wrapf(err, "session: revoke lease %x", int64(lease))
	}
	return nil
}

// claim puts val at key with lease if the key is absent, or held by old
// (the lost lease of this process's previous incarnation, whose key moves
// to the new lease without being deleted). It reports whether lease holds
// the key now and, if another lease does, the revision it was read at.
func (r *Registration) claim(ctx context.Context, key string, val []byte, lease, old clientv3.LeaseID) (bool, int64, error) {
	put := clientv3.OpPut(key, string(val), clientv3.WithLease(lease))
	cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	for range 3 { // the key may change between two transactions
		rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		resp, err := r.cli.Txn(rctx).If(cmp).Then(put).Else(clientv3.OpGet(key)).Commit()
		cancel()
		if err != nil {
			return false, 0, errors.Wrapf(err, "session: put %s", key)
		}
		if resp.Succeeded {
			return true, 0, nil
		}
		kv := firstKV(resp, 0)
		switch {
		case kv == nil:
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		case clientv3.LeaseID(kv.Lease) == lease:
			return true, 0, nil // an earlier attempt did put it
		case old != 0 && clientv3.LeaseID(kv.Lease) == old:
			cmp = clientv3.Compare(clientv3.LeaseValue(key), "=", old)
		default:
			return false, resp.Header.Revision, nil
		}
	}
	return false, 0, errors.Newf("session: %s keeps changing", key)
}

// replaceStale revokes the leases of other sessions of the role registered
// at this Address (other than own and old, this process's leases), so a restarted process does not wait for (or fail on)
// the keys of its previous run. The active key of an exclusive role is
// included: revoking its lease frees it at once.
func (r *Registration) replaceStale(ctx context.Context, own, old clientv3.LeaseID) error {
	r.mu.Lock()
	addr := r.sess.Address
	r.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	resp, err := r.cli.Get(rctx, r.cfg.RolePrefix(r.role), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return errors.Wrap(err, "session: list sessions at this address")
	}
	stale := map[clientv3.LeaseID]Session{}
	for _, kv := range resp.Kvs {
		lease := clientv3.LeaseID(kv.Lease)
		if lease == 0 || lease == own || lease == old {
			continue
		}
		if _, ok := r.cfg.ParseKey(r.role, string(kv.Key)); !ok {
			continue
		}
		s, err := Decode(kv.Value)
		if err != nil || s.Address != addr {
			continue
		}
		stale[lease] = s
	}
	for lease, s := range stale {
		if err := r.revoke(ctx, lease); err != nil {
			return err
		}
		r.log.Warn("replaced a stale session at this address",
			zap.Int64("stale_node_id", s.ServerID), zap.Int64("stale_lease_id", int64(lease)),
			zap.String("address", addr))
	}
	return nil
}
