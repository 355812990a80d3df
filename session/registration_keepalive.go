package session

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
)

// Reasons a lease is lost or a term is unsure of it; logged and kept as
// LastError, never returned by Err (which returns ErrLeaseLost).
var (
	errLeaseGone    = errors.New("etcd reports the lease gone")
	errStreamClosed = errors.New("keepalive stream closed")
	errNoAck        = errors.New("no keepalive acknowledged before the local lease deadline")
)

// keep keeps t's lease alive until t ends, or until etcd says the lease is
// gone, which it reports on t.gone.
//
// It never decides on its own that the lease is lost: a stream that closes
// (etcd unreachable, a leader election) is re-established with backoff on
// the same lease, and between two streams etcd is asked (TimeToLive).
// Every acknowledgement, of a keepalive or of TimeToLive, moves the local
// deadline (see watchdog). Only etcd saying the lease is gone ends it.
func (r *Registration) keep(t *term) {
	failures := 0
	for {
		acked, err := r.keepAliveStream(t)
		if t.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errLeaseGone) {
			t.gone <- err
			return
		}
		if acked {
			failures = 0
		}
		failures++
		r.o.metrics.KeepAliveFailed.WithLabelValues(r.role).Inc()
		if failures == 1 {
			r.log.Info("keepalive stream broke; re-establishing on the same lease",
				leaseField(t.lease), zap.String("cause", errText(err)))
		}
		switch alive, ttl, err := r.timeToLive(t); {
		case err == nil && !alive:
			t.gone <- errLeaseGone
			return
		case err == nil:
			r.ack(t, ttl)
		default:
			r.setLastErr(t, err)
		}
		wait := r.o.clock.NewTimer(r.cfg.Retry.Delay(failures, r.rand()))
		select {
		case <-t.ctx.Done():
			wait.Stop()
			return
		case <-wait.Chan():
		}
	}
}

// keepAliveStream consumes one keepalive channel until it closes or t
// ends, acknowledging each response. It reports whether there was one.
func (r *Registration) keepAliveStream(t *term) (acked bool, _ error) {
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel() // stops this channel's keepalives
	ch, err := r.cli.KeepAlive(ctx, t.lease)
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return false, errLeaseGone
		}
		return false, errors.Wrap(err, "session: keepalive")
	}
	for {
		select {
		case <-ctx.Done():
			return acked, ctx.Err()
		case resp, ok := <-ch:
			if !ok {
				return acked, errStreamClosed
			}
			if resp.TTL <= 0 {
				return acked, errLeaseGone
			}
			acked = true
			r.ack(t, time.Duration(resp.TTL)*time.Second)
		}
	}
}

// timeToLive asks etcd, bounded by RequestTimeout, whether t's lease is
// alive and how long it has left.
func (r *Registration) timeToLive(t *term) (alive bool, ttl time.Duration, _ error) {
	rctx, cancel := context.WithTimeout(t.ctx, r.cfg.RequestTimeout)
	defer cancel()
	start := r.o.clock.Now()
	resp, err := r.cli.TimeToLive(rctx, t.lease)
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return false, 0, nil
	case err != nil:
		return false, 0, errors.Wrap(err, "session: ask etcd for the lease's time to live")
	case resp.TTL <= 0:
		return false, 0, nil
	}
	r.observeRTT(r.o.clock.Since(start))
	return true, time.Duration(resp.TTL) * time.Second, nil
}

// ack records that etcd acknowledged t's lease with ttl left: the local
// deadline moves on and a Disconnected registration is Connected again.
func (r *Registration) ack(t *term, ttl time.Duration) {
	now := r.o.clock.Now()
	r.mu.Lock()
	t.lastAck, t.ttl = now, ttl
	reconnected := t.installed && r.state == StateDisconnected
	if reconnected {
		r.setStateLocked(StateConnected, nil)
	}
	if t.installed && r.state == StateConnected {
		r.lastErr = nil
	}
	r.mu.Unlock()
	for _, ch := range []chan struct{}{t.kick, t.ackEx} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	if reconnected {
		r.log.Info("connected again: etcd acknowledged the same lease", leaseField(t.lease))
	}
}

// watchdog makes t's Registration Disconnected, and fences an active
// exclusive process, when the local deadline passes without an
// acknowledgement: the last acknowledgement + the acknowledged TTL − the
// fence margin. It runs while t is installed.
func (r *Registration) watchdog(t *term) {
	clock := r.o.clock
	for {
		r.mu.Lock()
		deadline := t.lastAck.Add(t.ttl - r.fenceMargin(t.ttl))
		r.mu.Unlock()
		if !clock.Now().Before(deadline) {
			r.disconnect(t, deadline)
			select {
			case <-t.ctx.Done():
				return
			case <-t.kick:
			}
			continue
		}
		timer := clock.NewTimer(clock.Until(deadline))
		select {
		case <-t.ctx.Done():
			timer.Stop()
			return
		case <-t.kick:
			timer.Stop()
		case <-timer.Chan():
		}
	}
}

// disconnect makes the Registration Disconnected if t is current and
// Connected, and ends an active process's term.
func (r *Registration) disconnect(t *term, deadline time.Time) {
	r.mu.Lock()
	if !t.installed || r.state != StateConnected {
		r.mu.Unlock()
		return
	}
	// The term ends with the state change: whoever sees Disconnected sees
	// the fence too.
	fenced := r.fenceLocked()
	r.setStateLocked(StateDisconnected, errNoAck)
	r.mu.Unlock()
	r.o.metrics.Disconnects.WithLabelValues(r.role).Inc()
	r.log.Warn("disconnected: no keepalive acknowledged before the local lease deadline; "+
		"keeping the session and serving while etcd is asked again",
		leaseField(t.lease), zap.Time("deadline", deadline))
	if fenced {
		r.logFenced(t, "no keepalive acknowledged before the local lease deadline")
	}
}

// fenceMargin is subtracted from the lease's deadline as seen locally:
// Config.FenceMargin, at least half the slowest recent etcd round trip
// (a one-way latency estimate), and at most a quarter of the TTL, so that
// the keepalives etcd's client sends every TTL/3 (checked every 500 ms)
// land before the local deadline.
func (r *Registration) fenceMargin(ttl time.Duration) time.Duration {
	m := r.cfg.FenceMargin
	if m == 0 {
		m = max(time.Second, ttl/10)
	}
	m = max(m, time.Duration(r.rtt.Load())/2)
	return min(m, ttl/4)
}

// observeRTT keeps a decaying maximum of etcd round trips.
func (r *Registration) observeRTT(d time.Duration) {
	for {
		old := r.rtt.Load()
		next := max(int64(d), old-old/8)
		if r.rtt.CompareAndSwap(old, next) {
			return
		}
	}
}

// errText is an error's message without a stack trace, for routine logs.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
