package session

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/retry"
)

// registerNew is the first registration of a process without a ServerID:
// it takes the next ServerID from the counter at cfg.IDKey() and puts the
// session under it, in two round trips to etcd:
//
//  1. the lease is granted while the counter (and, with ReplaceStale, the
//     role's sessions) is read, in parallel;
//  2. one transaction swaps the counter and puts the session, if the
//     counter is unchanged and the session key absent.
//
// The counter holds the next free ID as a decimal string, as Milvus keeps
// it; a missing counter is created by the same transaction. Losing the
// swap to another process is progress, not failure: the transaction's
// else branch reads the counter and the key, and the next swap, under the
// same lease, is tried at once. An ID whose key is taken (registered with
// that ServerID given) is skipped. Errors (etcd unreachable, a request
// timing out) are retried under cfg.Retry, each attempt with a lease of
// its own (a failed attempt's lease is revoked); the whole is bounded by
// ctx. The keepalive runs from the moment the swap is tried.
func registerNew(ctx context.Context, cli *clientv3.Client, s Session, cfg Config, o options) (*Registration, *term, error) {
	var r *Registration
	var t *term
	err := retry.Do(ctx, cfg.Retry, func(ctx context.Context) error {
		var err error
		r, t, err = registerNewOnce(ctx, cli, s, cfg, o)
		return err
	}, retryOptions(o)...)
	if err != nil {
		return nil, nil, errors.Wrapf(err, "session: register %s with a new ServerID from %s", s, cfg.IDKey())
	}
	return r, t, nil
}

// registerNewOnce is one attempt of registerNew.
func registerNewOnce(ctx context.Context, cli *clientv3.Client, s Session, cfg Config, o options) (_ *Registration, _ *term, err error) {
	g, read := grantAndRead(ctx, cli, s, cfg, o)
	if g.err != nil || read.err != nil {
		if g.err == nil {
			revokeDetached(ctx, cli, cfg, g.lease)
		}
		return nil, nil, errors.CombineErrors(g.err, read.err)
	}
	counter := read.counter
	var r *Registration
	var t *term
	defer func() {
		if err != nil {
			if r != nil {
				t.stop()
				r.cancel()
				r.wg.Wait()
			}
			revokeDetached(ctx, cli, cfg, g.lease)
		}
	}()
	id := int64(0)
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		next, err := counterValue(cfg, counter)
		if err != nil {
			return nil, nil, err
		}
		if id < next {
			id = next
		}
		if r == nil || r.sess.ServerID != id {
			if r != nil { // the ID moved: the Registration of the new one keeps the lease
				t.stop()
				r.cancel()
				r.wg.Wait()
			}
			s.ServerID = id
			r = newRegistration(cli, s, cfg, o)
			r.observeRTT(g.rtt)
			t = r.newTerm(g.lease, g.ttl, g.granted)
		}
		ok, now, taken, err := r.swapAndPut(ctx, g.lease, counter, id)
		switch {
		case err != nil:
			return nil, nil, err
		case ok:
			if err := r.finishFirst(ctx, t, read.sessions); err != nil {
				return nil, nil, err
			}
			return r, t, nil
		case taken && sameRevision(now, counter):
			id++ // the counter is ours to move, the ID is not free
		}
		counter = now
	}
}

// sameRevision reports whether a and b are the same version of a key
// (nil: absent).
func sameRevision(a, b *mvccpb.KeyValue) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ModRevision == b.ModRevision
}

// grantResult is the lease granted for a registration.
type grantResult struct {
	lease   clientv3.LeaseID
	ttl     time.Duration
	granted time.Time
	rtt     time.Duration
	err     error
}

// readResult is what a new registration reads before it writes.
type readResult struct {
	counter  *mvccpb.KeyValue   // nil: no counter yet
	sessions []*mvccpb.KeyValue // the role's keys, with ReplaceStale
	err      error
}

// grantAndRead grants the lease and reads the counter (and the role's
// sessions) at the same time.
func grantAndRead(ctx context.Context, cli *clientv3.Client, s Session, cfg Config, o options) (grantResult, readResult) {
	var g grantResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		defer cancel()
		start := o.clock.Now()
		resp, err := cli.Grant(rctx, int64(cfg.TTL/time.Second))
		if err != nil {
			g.err = errors.Wrap(err, "session: grant lease")
			return
		}
		g.granted, g.rtt = start, o.clock.Since(start)
		g.lease, g.ttl = resp.ID, time.Duration(resp.TTL)*time.Second
	}()
	var rd readResult
	ops := []clientv3.Op{clientv3.OpGet(cfg.IDKey())}
	if cfg.ReplaceStale {
		ops = append(ops, clientv3.OpGet(cfg.RolePrefix(s.ServerName), clientv3.WithPrefix()))
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	resp, err := cli.Txn(rctx).Then(ops...).Commit()
	cancel()
	if err != nil {
		rd.err = errors.Wrap(err, "session: read ServerID counter")
	} else {
		rd.counter = firstKV(resp, 0)
		if len(resp.Responses) > 1 {
			rd.sessions = resp.Responses[1].GetResponseRange().GetKvs()
		}
	}
	wg.Wait()
	return g, rd
}

// counterValue returns the next free ID the counter holds: 1 when there
// is no counter.
func counterValue(cfg Config, kv *mvccpb.KeyValue) (int64, error) {
	if kv == nil {
		return 1, nil
	}
	next, err := strconv.ParseInt(string(kv.Value), 10, 64)
	if err != nil || next < 1 {
		return 0, retry.Unrecoverable(errors.Newf(
			"session: ServerID counter %s holds %q, not a positive decimal", cfg.IDKey(), kv.Value))
	}
	return next, nil
}

// swapAndPut moves the counter, as read (nil: absent), past id and puts
// the session under id with lease, in one transaction, if the counter is
// unchanged and id's key absent. Otherwise it returns the counter as it
// is now and whether id's key is taken.
func (r *Registration) swapAndPut(ctx context.Context, lease clientv3.LeaseID, counter *mvccpb.KeyValue, id int64) (ok bool, now *mvccpb.KeyValue, taken bool, err error) {
	idKey, key := r.cfg.IDKey(), r.cfg.Key(r.role, id)
	r.mu.Lock()
	s := r.sess
	r.mu.Unlock()
	s.LeaseID = int64(lease)
	val, err := s.Encode()
	if err != nil {
		return false, nil, false, retry.Unrecoverable(err)
	}
	same := clientv3.Compare(clientv3.CreateRevision(idKey), "=", 0)
	if counter != nil {
		same = clientv3.Compare(clientv3.ModRevision(idKey), "=", counter.ModRevision)
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	resp, err := r.cli.Txn(rctx).
		If(same, clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(idKey, strconv.FormatInt(id+1, 10)), clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(idKey), clientv3.OpGet(key)).
		Commit()
	cancel()
	if err != nil {
		return false, nil, false, errors.Wrap(err, "session: swap ServerID counter and put the session")
	}
	if resp.Succeeded {
		return true, nil, false, nil
	}
	return false, firstKV(resp, 0), firstKV(resp, 1) != nil, nil
}

// finishFirst completes a first registration whose session is in place:
// it revokes stale sessions at this address among those read before, and
// for an exclusive role tries once to take the active key.
func (r *Registration) finishFirst(ctx context.Context, t *term, sessions []*mvccpb.KeyValue) error {
	if r.cfg.ReplaceStale {
		if err := r.revokeStale(ctx, t.lease, sessions); err != nil {
			return err
		}
	}
	r.mu.Lock()
	s := r.sess
	r.mu.Unlock()
	if !s.Exclusive {
		return nil
	}
	s.LeaseID = int64(t.lease)
	val, err := s.Encode()
	if err != nil {
		return retry.Unrecoverable(err)
	}
	t.claimed, _, err = r.claim(ctx, r.cfg.ActiveKey(r.role), val, t.lease, 0)
	return err
}

// revokeDetached revokes lease with a context of its own: a put that etcd
// applied just before ctx ended must not leave a key behind for a whole
// TTL. A failure is left to the lease's expiry.
func revokeDetached(ctx context.Context, cli *clientv3.Client, cfg Config, lease clientv3.LeaseID) {
	if cli.Ctx().Err() != nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.RequestTimeout)
	defer cancel()
	_, _ = cli.Revoke(rctx, lease)
}

// firstKV returns the first key of the range response at index i of a
// transaction's responses, or nil.
func firstKV(resp *clientv3.TxnResponse, i int) *mvccpb.KeyValue {
	if i >= len(resp.Responses) {
		return nil
	}
	r := resp.Responses[i].GetResponseRange()
	if r == nil || len(r.Kvs) == 0 {
		return nil
	}
	return r.Kvs[0]
}
