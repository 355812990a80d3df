package session

import (
	"context"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/retry"
)

// term is one lease of a Registration: the keys written with it and the
// goroutines that serve it. Its keepalive starts right after the grant. A
// lease etcd says is gone ends the term; the process registers again under
// a new lease in a new term, with the same ServerID and Incarnation.
type term struct {
	lease clientv3.LeaseID

	ctx    context.Context // ends with the term or the Registration
	cancel context.CancelFunc
	wg     sync.WaitGroup // the term's goroutines

	gone  chan error    // capacity 1: why etcd says the lease is gone
	kick  chan struct{} // capacity 1: an acknowledgement arrived (watchdog)
	ackEx chan struct{} // capacity 1: an acknowledgement arrived (contend)

	claimed bool // took the active key while registering

	// Guarded by the Registration's mu.
	ttl         time.Duration // TTL etcd acknowledged last
	lastAck     time.Time     // clock time of the last acknowledgement (or the grant)
	installed   bool          // the term is the Registration's current one
	putStopping bool          // the value written with this lease carries Stopping
}

// newTerm starts the keepalive of lease at once, so the lease lives while
// the rest of the registration (stale replacement, claims) runs.
func (r *Registration) newTerm(lease clientv3.LeaseID, ttl time.Duration, granted time.Time) *term {
	t := &term{
		lease:   lease,
		ttl:     ttl,
		lastAck: granted,
		gone:    make(chan error, 1),
		kick:    make(chan struct{}, 1),
		ackEx:   make(chan struct{}, 1),
	}
	t.ctx, t.cancel = context.WithCancel(r.ctx)
	r.goTerm(t, r.keep)
	return t
}

// goTerm runs f(t) as one of t's goroutines.
func (r *Registration) goTerm(t *term, f func(*term)) {
	t.wg.Add(1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer t.wg.Done()
		f(t)
	}()
}

// stop ends the term's goroutines and waits for them. It must not be
// called from one of them.
func (t *term) stop() {
	t.cancel()
	t.wg.Wait()
}

// establish registers a new term under policy. old, when non-zero, is the
// lost lease of the previous term: keys etcd still holds under it move to
// the new lease. first is true for the first registration of the process.
func (r *Registration) establish(ctx context.Context, p retry.Policy, old clientv3.LeaseID, first bool, opts ...retry.Option) (*term, error) {
	var t *term
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		var err error
		t, err = r.registerOnce(ctx, old, first)
		return err
	}, append(retryOptions(r.o), opts...)...)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// registerOnce grants a lease and starts its keepalive, replaces stale
// sessions at this address (first registration only), puts the session key
// if absent (or held by old) and, for an exclusive role, tries once to take
// the active key. On failure the term is stopped and its lease revoked,
// with a context of its own: a put that etcd applied just before ctx ended
// must not leave a key behind for a whole TTL.
func (r *Registration) registerOnce(ctx context.Context, old clientv3.LeaseID, first bool) (_ *term, err error) {
	lease, ttl, err := r.grant(ctx)
	if err != nil {
		return nil, err
	}
	t := r.newTerm(lease, ttl, r.o.clock.Now())
	defer func() {
		if err != nil {
			t.stop()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.RequestTimeout)
			_ = r.revoke(rctx, lease) // if this fails too, it expires
			cancel()
		}
	}()
	if r.cfg.ReplaceStale && first {
		if err := r.replaceStale(ctx, lease); err != nil {
			return nil, err
		}
	}
	if err := r.acquireWrite(ctx); err != nil {
		return nil, err
	}
	defer r.releaseWrite()

	r.mu.Lock()
	s := r.sess
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
	t.putStopping = s.Stopping
	if s.Exclusive && !s.Stopping {
		t.claimed, _, err = r.claim(ctx, r.cfg.ActiveKey(r.role), val, lease, old)
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (r *Registration) grant(ctx context.Context) (clientv3.LeaseID, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	start := r.o.clock.Now()
	resp, err := r.cli.Grant(rctx, int64(r.cfg.TTL/time.Second))
	if err != nil {
		return 0, 0, errors.Wrap(err, "session: grant lease")
	}
	r.observeRTT(r.o.clock.Since(start))
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
// (the lost lease of this process's previous term, whose key moves to the
// new lease without being deleted). It reports whether lease holds the key
// now and, if another lease does, the revision it was read at.
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
// at this Address by another process start (another Incarnation), so a
// restarted process does not wait for (or fail on) the keys of its previous
// run. It runs on the first registration of a process only: two live
// processes wrongly given one address must not evict each other on every
// re-registration. The active key of an exclusive role is included:
// revoking its lease frees it at once.
func (r *Registration) replaceStale(ctx context.Context, own clientv3.LeaseID) error {
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	resp, err := r.cli.Get(rctx, r.cfg.RolePrefix(r.role), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return errors.Wrap(err, "session: list sessions at this address")
	}
	return r.revokeStale(ctx, own, resp.Kvs)
}

// revokeStale revokes the leases of the stale sessions among kvs, keys
// under the role's prefix (see replaceStale).
func (r *Registration) revokeStale(ctx context.Context, own clientv3.LeaseID, kvs []*mvccpb.KeyValue) error {
	r.mu.Lock()
	addr, inc := r.sess.Address, r.sess.Incarnation
	r.mu.Unlock()
	stale := map[clientv3.LeaseID]Session{}
	for _, kv := range kvs {
		lease := clientv3.LeaseID(kv.Lease)
		if lease == 0 || lease == own {
			continue
		}
		if _, ok := r.cfg.ParseKey(r.role, string(kv.Key)); !ok {
			continue
		}
		s, err := Decode(kv.Value)
		if err != nil || s.Address != addr || (s.Incarnation != "" && s.Incarnation == inc) {
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
			zap.String("stale_incarnation", s.Incarnation), zap.String("address", addr))
	}
	return nil
}
