package startup

import (
	"context"

	"github.com/cockroachdb/errors"

	"github.com/coordkit/clientmanager/session"
)

// registered moves to StandBy when reg is an exclusive role's standby, or
// activates the component and moves to Healthy.
func (r *Runner) registered(ctx context.Context, reg *session.Registration, reason string) error {
	s := reg.Session()
	if s.Exclusive && !reg.IsActive() {
		return r.to(StateStandBy, reason+"; standing by for the active process")
	}
	if s.Exclusive {
		if err := r.activate(ctx); err != nil {
			return err
		}
		reason += "; active"
	}
	return r.to(StateHealthy, reason)
}

func (r *Runner) activate(ctx context.Context) error {
	a, ok := r.comp.(Activator)
	if !ok {
		return nil
	}
	if err := a.Activate(ctx); err != nil {
		return errors.Wrap(err, "startup: Activate")
	}
	return nil
}

// follow tracks the session while the component serves: Abnormal while its
// lease is lost, Healthy (or StandBy) once registered again, Healthy when a
// standby takes over. It returns nil when ctx ends, or why it must stop.
func (r *Runner) follow(ctx context.Context, sv *serving, reg *session.Registration) error {
	for {
		var lost, ready, active <-chan struct{}
		switch r.m.current() {
		case StateHealthy:
			lost = reg.Lost()
		case StateStandBy:
			lost, active = reg.Lost(), reg.Active()
		case StateAbnormal:
			ready = reg.Ready()
		}
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-sv.served:
			return errors.Wrap(sv.err, "startup: gRPC server stopped serving")
		case <-reg.Done():
			return r.sessionEnded(reg)
		case <-lost:
			err = r.to(StateAbnormal, "session lease lost")
		case <-ready:
			err = r.registered(ctx, reg, "session registered again")
		case <-active:
			if err = r.activate(ctx); err == nil {
				err = r.to(StateHealthy, "took over the active role")
			}
		}
		if err != nil {
			return err
		}
	}
}

// sessionEnded handles a Registration that ended on its own: its lease was
// lost under session.Exit.
func (r *Runner) sessionEnded(reg *session.Registration) error {
	if s := r.m.current(); s == StateHealthy || s == StateStandBy {
		_ = r.to(StateAbnormal, "session lease lost; the session policy is exit")
	}
	err := reg.Err()
	if err == nil {
		err = session.ErrLeaseLost
	}
	return errors.Wrap(err, "startup: session ended")
}
