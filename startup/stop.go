package startup

import (
	"context"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/session"
)

// shutdown stops gracefully from any state, in this order:
//
//  1. Stopping=true in etcd, while still serving, so watchers stop picking
//     the process (bounded by SessionConfig.RequestTimeout);
//  2. the lame-duck wait (Config.LameDuck), calls still served, skipped
//     when the process is idle (see busyWithin);
//  3. StateStopping: health NOT_SERVING, new calls refused;
//  4. the component's Stop, concurrently with the drain of calls in flight
//     (a call may end only when the component stops);
//  5. the gRPC server's graceful stop;
//  6. the lease revoked, StateStopped.
//
// StopTimeout bounds 3 to 5; when it elapses, or on ForceStop (which also
// cuts 1 and 2 short), the drain is abandoned, the server stopped at once,
// and the result holds ErrForcedStop.
func (r *Runner) shutdown(sv *serving, reg *session.Registration, inited bool, cause error) error {
	reason := "stop requested"
	if cause != nil {
		reason = "stopping on error: " + cause.Error()
	}
	if reg != nil {
		r.markStopping(reg)
		r.lameDuck(sv)
	}
	var errs []error
	if err := r.to(StateStopping, reason); err != nil {
		errs = append(errs, err)
	}
	// stopCtx ends when StopTimeout elapses or on ForceStop.
	stopCtx, cancel := context.WithCancel(r.force)
	defer cancel()
	timer := r.o.clock.AfterFunc(r.cfg.StopTimeout, cancel)
	defer timer.Stop()

	stopped := make(chan error, 1) // the component's Stop returned
	if inited {
		go func() { stopped <- r.comp.Stop(stopCtx) }()
	} else {
		stopped <- nil
	}
	drained := r.gate.drain(stopCtx.Done())
	if !drained {
		r.log.Warn("calls still in flight when the stop was forced",
			zap.Int64("in_flight", r.gate.inflight.Load()), zap.Duration("stop_timeout", r.cfg.StopTimeout))
	}
	var stopErr error
	stopInTime := true
	select {
	case stopErr = <-stopped:
	case <-stopCtx.Done():
		select {
		case stopErr = <-stopped:
		default:
			stopInTime = false
			r.log.Warn("the component's Stop still runs when the stop was forced",
				zap.Duration("stop_timeout", r.cfg.StopTimeout))
		}
	}
	graceful := r.stopServer(stopCtx, sv)
	forced := !drained || !stopInTime || !graceful || r.force.Err() != nil
	if !stopInTime {
		// The server is stopped: whatever the component waited for in a
		// handler has ended. Stop is still owed its return.
		stopErr = <-stopped
	}
	if stopErr != nil {
		errs = append(errs, errors.Wrap(stopErr, "startup: Stop"))
	}

	if reg != nil {
		cctx, ccancel := context.WithTimeout(context.Background(), r.cfg.SessionConfig.RequestTimeout)
		if err := reg.Close(cctx); err != nil {
			errs = append(errs, errors.Wrap(err, "startup: revoke session"))
		}
		ccancel()
	}
	if forced {
		errs = append(errs, ErrForcedStop)
	}
	if err := r.to(StateStopped, "stopped"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// markStopping writes Stopping=true to the session, bounded by
// SessionConfig.RequestTimeout and ForceStop. A failure is logged: the
// stop goes on, and the revoke at its end removes the session anyway.
func (r *Runner) markStopping(reg *session.Registration) {
	ctx, cancel := context.WithTimeout(r.force, r.cfg.SessionConfig.RequestTimeout)
	defer cancel()
	if err := reg.MarkStopping(ctx); err != nil {
		r.log.Warn("could not mark the session stopping", zap.Error(err))
	}
}

// lameDuck keeps serving for Config.LameDuck after the session was marked
// Stopping, so that callers still picking this process from an older view
// are served while they learn of the stop. It returns at once when the
// Runner is not Healthy or its server stopped (it serves no one), when no
// admitted call was in flight during the last LameDuck (no one is
// calling), and on ForceStop.
func (r *Runner) lameDuck(sv *serving) {
	d := r.cfg.LameDuck
	select {
	case <-sv.served:
		return
	default:
	}
	if d <= 0 || r.m.current() != StateHealthy || r.force.Err() != nil {
		return
	}
	if !r.gate.busyWithin(d) {
		r.log.Info("lame-duck wait skipped: no call in flight in the last lame-duck period",
			zap.Duration("lame_duck", d))
		return
	}
	r.log.Info("lame duck: marked stopping, still serving", zap.Duration("lame_duck", d))
	t := r.o.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
	case <-r.force.Done():
	case <-sv.served:
	}
}

// stopServer stops the gRPC server gracefully, or at once when stopCtx
// ends first (or had ended), and returns once Serve has returned. It
// reports whether the stop was graceful.
func (r *Runner) stopServer(stopCtx context.Context, sv *serving) bool {
	r.health.endWatches()
	if stopCtx.Err() != nil {
		sv.srv.Stop()
		<-sv.served
		return false
	}
	graceful := make(chan struct{})
	go func() {
		sv.srv.GracefulStop()
		close(graceful)
	}()
	ok := true
	select {
	case <-graceful:
	case <-stopCtx.Done():
		r.log.Warn("graceful stop of the gRPC server cut short")
		sv.srv.Stop()
		<-graceful
		ok = false
	}
	<-sv.served
	return ok
}
