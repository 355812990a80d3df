package startup

import (
	"context"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/session"
)

// shutdown stops gracefully from any state: Stopping (calls refused,
// health NOT_SERVING), Stopping=true in etcd, calls in flight drained,
// the component stopped, the server stopped, the lease revoked, Stopped.
// StopTimeout bounds the way to the server's stop; ForceStop cuts it short.
func (r *Runner) shutdown(sv *serving, reg *session.Registration, inited bool, cause error) error {
	reason := "stop requested"
	if cause != nil {
		reason = "stopping on error: " + cause.Error()
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

	if reg != nil {
		mctx, mcancel := context.WithTimeout(stopCtx, r.cfg.SessionConfig.RequestTimeout)
		if err := reg.MarkStopping(mctx); err != nil {
			r.log.Warn("could not mark the session stopping", zap.Error(err))
		}
		mcancel()
	}
	drained := r.gate.drain(stopCtx.Done())
	if !drained {
		r.log.Warn("calls still in flight when the stop was forced",
			zap.Int64("in_flight", r.gate.inflight.Load()), zap.Duration("stop_timeout", r.cfg.StopTimeout))
	}
	if inited {
		if err := r.comp.Stop(stopCtx); err != nil {
			errs = append(errs, errors.Wrap(err, "startup: Stop"))
		}
	}
	forced := !r.stopServer(stopCtx, sv) || !drained

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

// stopServer stops the gRPC server gracefully, or at once when stopCtx
// ends first, and returns once Serve has returned. It reports whether the
// stop was graceful.
func (r *Runner) stopServer(stopCtx context.Context, sv *serving) bool {
	r.health.endWatches()
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
