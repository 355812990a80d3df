package session

import (
	"context"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/retry"
)

// registerNew is the first registration of a process without a ServerID:
// it takes the next ServerID from the counter at cfg.IDKey() and puts the
// session under it, in about the time of two etcd writes in a row,
// without a client round trip between them:
//
//  1. the lease is granted, under an ID chosen here at random, while the
//     counter is read, serializably;
//  2. as soon as the counter is back, with the grant still in flight,
//     one transaction swaps the counter and puts the session under the
//     chosen lease, if the counter is unchanged and the session key
//     absent, and with ReplaceStale reads the role's sessions.
//
// etcd applies the two writes in the order their proposals reach its
// raft log. The grant leaves before the read, and the transaction only
// after the read's round trip, so the transaction nearly always finds
// the lease; one that was proposed before the grant fails whole (lease
// not found) and is sent again once the grant is back, which costs what
// the grant then the transaction cost in a row. The counter is read
// without a round of the leader's, so that it is back while the grant
// is in flight; a stale counter only fails the swap.
//
// The counter holds the next free ID as a decimal string, as Milvus keeps
// it; a missing counter is created by the same transaction. Losing the
// swap to another process is progress, not failure: the transaction's
// else branch reads the counter and the key, and the next swap, under the
// same lease, is tried at once. An ID whose key is taken (registered with
// that ServerID given) is skipped. Errors (etcd unreachable, a request
// timing out) are retried under cfg.Retry, each attempt with a lease of
// its own (a failed attempt's lease is revoked); the whole is bounded by
// ctx. The keepalive runs from the moment the grant is back.
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
	lease := o.newLeaseID()
	g, err := grantAsync(ctx, cli, cfg, o, lease)
	if err != nil {
		return nil, nil, err // not sent: nothing to read for
	}
	var r *Registration
	var t *term
	var id int64
	defer func() {
		if err == nil {
			return
		}
		if t != nil {
			t.stop()
		}
		if r != nil {
			r.cancel()
			r.wg.Wait()
		}
		if g.wait().err == nil {
			revokeDetached(ctx, cli, cfg, lease)
		}
	}()
	counter, err := readCounter(ctx, cli, cfg)
	if err != nil {
		return nil, nil, err
	}
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
				if t != nil {
					t.stop()
					t = nil
				}
				r.cancel()
				r.wg.Wait()
			}
			s.ServerID = id
			r = newRegistration(cli, s, cfg, o)
		}
		granted := g.done()
		if granted && t == nil {
			if t, err = r.startTerm(g, lease); err != nil {
				return nil, nil, err
			}
		}
		ok, sessions, now, taken, err := r.swapAndPut(ctx, lease, counter, id)
		switch {
		case err != nil && !granted && errors.Is(err, rpctypes.ErrLeaseNotFound):
			// The transaction reached etcd before the grant: the same
			// swap is tried again once the grant is back.
			if t, err = r.startTerm(g, lease); err != nil {
				return nil, nil, err
			}
			continue
		case err != nil:
			return nil, nil, err
		case ok:
			if t == nil {
				if t, err = r.startTerm(g, lease); err != nil {
					// The swap found the lease, so it exists, yet the
					// grant failed: the ID is another process's lease
					// (or the grant's answer was lost). The key must not
					// stay on a lease this Registration does not keep.
					r.dropSession(ctx, id, lease)
					return nil, nil, err
				}
			}
			if err := r.finishFirst(ctx, t, sessions); err != nil {
				return nil, nil, err
			}
			return r, t, nil
		case taken && sameRevision(now, counter):
			id++ // the counter is ours to move, the ID is not free
		}
		counter = now
	}
}

// startTerm waits for the grant g of lease and starts the lease's term on
// r: its keepalive runs from then on.
func (r *Registration) startTerm(g *pendingGrant, lease clientv3.LeaseID) (*term, error) {
	res := g.wait()
	if res.err != nil {
		return nil, res.err
	}
	r.observeRTT(res.rtt)
	return r.newTerm(lease, res.ttl, res.granted), nil
}

// dropSession deletes the session key of id if it is held by lease: a
// swap that succeeded under a lease whose grant failed (the ID chosen was
// another process's lease) must not leave the key on that lease. The
// counter stays moved: an ID is skipped, nothing is lost. A failure is
// logged; the key then goes with the other lease.
func (r *Registration) dropSession(ctx context.Context, id int64, lease clientv3.LeaseID) {
	key := r.cfg.Key(r.role, id)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.RequestTimeout)
	defer cancel()
	_, err := r.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		r.log.Warn("could not delete a session put under another process's lease",
			zap.String("key", key), leaseField(lease), zap.String("cause", errText(err)))
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

// grantResult is the lease granted for a registration, or why not.
type grantResult struct {
	ttl     time.Duration
	granted time.Time
	rtt     time.Duration
	err     error
}

// pendingGrant is a grant in flight, whose answer a goroutine of its own
// waits for, within the request's timeout.
type pendingGrant struct {
	ch  chan struct{} // closed when res is set
	res grantResult
}

// done reports whether the grant is back.
func (g *pendingGrant) done() bool {
	select {
	case <-g.ch:
		return true
	default:
		return false
	}
}

// wait waits for the grant.
func (g *pendingGrant) wait() grantResult {
	<-g.ch
	return g.res
}

// grantAsync sends the grant of lease, with the ID chosen by the caller,
// before it returns, and waits for its answer on a goroutine of its own,
// which the request's timeout bounds; it returns an error only when the
// grant could not be sent (etcd unreachable within that timeout). Sent from the caller's goroutine,
// the grant leaves ahead of the counter's read: a goroutine of its own
// to send it too was often scheduled only once the read had left, and
// the swap then reached etcd before the grant in up to a quarter of
// registrations (see sendGrant for the connection it uses).
func grantAsync(ctx context.Context, cli *clientv3.Client, cfg Config, o options, lease clientv3.LeaseID) (*pendingGrant, error) {
	g := &pendingGrant{ch: make(chan struct{})}
	rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	start := o.clock.Now()
	recv, err := o.sendGrant(rctx, cli, &pb.LeaseGrantRequest{TTL: int64(cfg.TTL / time.Second), ID: int64(lease)})
	if err != nil {
		cancel()
		return nil, errors.Wrapf(rpctypes.Error(err), "session: grant lease %x", int64(lease))
	}
	go func() {
		defer close(g.ch)
		defer cancel()
		resp, err := recv()
		if err != nil {
			g.res.err = errors.Wrapf(rpctypes.Error(err), "session: grant lease %x", int64(lease))
			return
		}
		g.res = grantResult{ttl: time.Duration(resp.TTL) * time.Second, granted: start, rtt: o.clock.Since(start)}
	}()
	return g, nil
}

// readCounter reads the ServerID counter serializably; nil: no counter
// yet.
func readCounter(ctx context.Context, cli *clientv3.Client, cfg Config) (*mvccpb.KeyValue, error) {
	rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	resp, err := cli.Get(rctx, cfg.IDKey(), clientv3.WithSerializable())
	if err != nil {
		return nil, errors.Wrap(err, "session: read ServerID counter")
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0], nil
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
// unchanged and id's key absent; with ReplaceStale the same transaction
// then reads the role's sessions (the new one among them). Otherwise it
// returns the counter as it is now and whether id's key is taken.
func (r *Registration) swapAndPut(ctx context.Context, lease clientv3.LeaseID, counter *mvccpb.KeyValue, id int64) (ok bool, sessions []*mvccpb.KeyValue, now *mvccpb.KeyValue, taken bool, err error) {
	idKey, key := r.cfg.IDKey(), r.cfg.Key(r.role, id)
	r.mu.Lock()
	s := r.sess
	r.mu.Unlock()
	s.LeaseID = int64(lease)
	val, err := s.Encode()
	if err != nil {
		return false, nil, nil, false, retry.Unrecoverable(err)
	}
	same := clientv3.Compare(clientv3.CreateRevision(idKey), "=", 0)
	if counter != nil {
		same = clientv3.Compare(clientv3.ModRevision(idKey), "=", counter.ModRevision)
	}
	then := []clientv3.Op{clientv3.OpPut(idKey, strconv.FormatInt(id+1, 10)), clientv3.OpPut(key, string(val), clientv3.WithLease(lease))}
	if r.cfg.ReplaceStale {
		then = append(then, clientv3.OpGet(r.cfg.RolePrefix(r.role), clientv3.WithPrefix()))
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	resp, err := r.cli.Txn(rctx).
		If(same, clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(then...).
		Else(clientv3.OpGet(idKey), clientv3.OpGet(key)).
		Commit()
	cancel()
	if err != nil {
		return false, nil, nil, false, errors.Wrap(err, "session: swap ServerID counter and put the session")
	}
	if resp.Succeeded {
		if len(resp.Responses) > 2 {
			sessions = resp.Responses[2].GetResponseRange().GetKvs()
		}
		return true, sessions, nil, false, nil
	}
	return false, nil, firstKV(resp, 0), firstKV(resp, 1) != nil, nil
}

// finishFirst completes a first registration whose session is in place:
// it revokes stale sessions at this address among those the swap read, and
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
