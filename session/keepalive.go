package session

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
)

// Reasons a lease is lost; logged, never returned to users (Err returns
// ErrLeaseLost).
var (
	errLeaseExpired = errors.New("no keepalive acknowledged within the lease TTL")
	errLeaseGone    = errors.New("etcd reports the lease gone")
	errStreamClosed = errors.New("keepalive stream closed")
)

// keepAlive keeps inc's lease alive until inc.ctx ends (it returns nil) or
// the lease is lost (it returns the reason).
//
// The deadline is the clock time of the last acknowledged keepalive (of the
// grant, at first) plus the TTL etcd acknowledged: when it passes without an
// acknowledgement the lease is lost, whatever the stream does. A stream that
// closes before the deadline is re-established on the same lease with
// backoff; etcd saying the lease is gone loses it at once.
func (r *Registration) keepAlive(inc *incarnation) error {
	ctx, clock := inc.ctx, r.o.clock
	deadline := inc.granted.Add(inc.ttl)
	timer := clock.NewTimer(clock.Until(deadline))
	defer timer.Stop()
	failures := 0
	for {
		acked, err := r.keepAliveStream(inc, timer, &deadline)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errLeaseExpired), errors.Is(err, errLeaseGone):
			return err
		}
		if acked {
			failures = 0
		}
		failures++
		r.o.metrics.KeepAliveFailed.WithLabelValues(r.role).Inc()
		if failures == 1 {
			r.log.Warn("keepalive stream broke; re-establishing on the same lease",
				leaseField(inc.lease), zap.Error(err), zap.Time("deadline", deadline))
		}
		if err := r.leaseGone(inc, deadline); err != nil {
			return err
		}
		wait := clock.NewTimer(r.cfg.Retry.Backoff(failures, r.rand()))
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil
		case <-timer.Chan():
			wait.Stop()
			return errLeaseExpired
		case <-wait.Chan():
		}
	}
}

// keepAliveStream consumes one keepalive channel until it closes, the
// deadline passes or inc.ctx ends. It moves the deadline on every
// acknowledgement and reports whether there was one.
func (r *Registration) keepAliveStream(inc *incarnation, timer clockwork.Timer, deadline *time.Time) (acked bool, _ error) {
	ctx, cancel := context.WithCancel(inc.ctx)
	defer cancel() // stops this channel's keepalives
	ch, err := r.cli.KeepAlive(ctx, inc.lease)
	if err != nil {
		return false, errors.Wrap(err, "session: keepalive")
	}
	clock := r.o.clock
	for {
		select {
		case <-ctx.Done():
			return acked, ctx.Err()
		case <-timer.Chan():
			if now := clock.Now(); now.Before(*deadline) {
				timer.Reset(deadline.Sub(now))
				continue
			}
			return acked, errLeaseExpired
		case resp, ok := <-ch:
			if !ok {
				return acked, errStreamClosed
			}
			if resp.TTL <= 0 {
				return acked, errLeaseGone
			}
			acked = true
			*deadline = clock.Now().Add(time.Duration(resp.TTL) * time.Second)
			if !timer.Stop() {
				select {
				case <-timer.Chan():
				default:
				}
			}
			timer.Reset(clock.Until(*deadline))
		}
	}
}

// leaseGone asks etcd, bounded by the deadline and RequestTimeout, whether
// the lease still exists. It returns errLeaseGone when etcd says it does
// not, and nil when it does or when etcd could not be asked.
func (r *Registration) leaseGone(inc *incarnation, deadline time.Time) error {
	dctx, dcancel := clockwork.WithDeadline(inc.ctx, r.o.clock, deadline)
	defer dcancel()
	rctx, cancel := context.WithTimeout(dctx, r.cfg.RequestTimeout)
	defer cancel()
	resp, err := r.cli.TimeToLive(rctx, inc.lease)
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return errLeaseGone
	case err != nil:
		return nil
	case resp.TTL <= 0:
		return errLeaseGone
	}
	return nil
}
