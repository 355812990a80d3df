package startup

import (
	"context"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"
)

// errWaitExpired ends the wait for one role when DependencyTimeout passed.
var errWaitExpired = errors.New("startup: dependency wait expired")

// waitDependencies adds every dependency to the client manager and waits,
// bounded by DependencyTimeout for all of them together, until each
// required one is online. A role still offline then is logged and left to
// the manager (Continue) or fails the Runner (Strict).
func (r *Runner) waitDependencies(ctx context.Context) error {
	if len(r.cfg.Dependencies) == 0 {
		return nil
	}
	for _, d := range r.cfg.Dependencies {
		if err := r.mgr.AddDependency(d.Role); err != nil {
			return errors.Wrapf(err, "startup: add dependency %s", d.Role)
		}
	}
	expired := make(chan struct{})
	if r.cfg.DependencyTimeout == 0 {
		close(expired)
	} else {
		t := r.o.clock.AfterFunc(r.cfg.DependencyTimeout, func() { close(expired) })
		defer t.Stop()
	}
	wctx, cancel := context.WithCancel(ctx) // ends the WatchClients subscriptions
	defer cancel()
	for _, d := range r.cfg.Dependencies {
		if d.Optional {
			continue
		}
		err := r.waitRole(wctx, d.Role, expired)
		switch {
		case err == nil:
			continue
		case !errors.Is(err, errWaitExpired):
			return err
		case r.cfg.DependencyPolicy == Strict:
			r.log.Error("required dependency not online in time", zap.String("dependency", d.Role),
				zap.Duration("timeout", r.cfg.DependencyTimeout), zap.Stringer("policy", Strict))
			return &DependencyTimeoutError{Role: d.Role, Timeout: r.cfg.DependencyTimeout}
		default:
			r.log.Warn("required dependency not online in time; continuing, it is connected when its session appears",
				zap.String("dependency", d.Role), zap.Duration("timeout", r.cfg.DependencyTimeout),
				zap.Stringer("policy", Continue))
		}
	}
	return nil
}

// waitRole returns nil once role is online, errWaitExpired when expired is
// closed first, or ctx's error.
func (r *Runner) waitRole(ctx context.Context, role string, expired <-chan struct{}) error {
	if r.mgr.IsRoleOnline(role) {
		return nil
	}
	r.log.Info("waiting for dependency", zap.String("dependency", role))
	events := r.mgr.WatchClients(ctx, role)
	for !r.mgr.IsRoleOnline(role) {
		select {
		case _, ok := <-events:
			if !ok {
				if err := ctx.Err(); err != nil {
					return err
				}
				return errors.Newf("startup: client manager closed while waiting for dependency %s", role)
			}
		case <-expired:
			return errWaitExpired
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.log.Info("dependency online", zap.String("dependency", role))
	return nil
}
