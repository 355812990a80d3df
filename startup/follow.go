package startup

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/session"
)

// follower tracks the session of a serving component: see follow.
type follower struct {
	r   *Runner
	reg *session.Registration

	// termCancel ends the context given to Activate; nil outside an active
	// term. fenced is that term's end (Tenure returns the next term's
	// channels once it has ended).
	termCancel context.CancelFunc
	fenced     <-chan struct{}
	// unregistered fires AbnormalAfter after the session stopped being
	// Connected; nil while it is.
	unregistered clockwork.Timer
}

// follow moves the component with its session, from Registering until ctx
// ends:
//   - Connected: Healthy; for an exclusive role Healthy only during an
//     active term (Activate called first), StandBy otherwise.
//   - Disconnected or Reregistering: no change (a non-exclusive component
//     keeps serving) until AbnormalAfter has passed, then Abnormal, until
//     Connected again.
//   - An exclusive role's active term ends (fenced): the context given to
//     Activate is cancelled, Deactivate is called, StandBy.
//
// It returns nil when ctx ends, or why the Runner must stop.
func (r *Runner) follow(ctx context.Context, sv *serving, reg *session.Registration) error {
	f := &follower{r: r, reg: reg}
	defer f.endTerm(context.WithoutCancel(ctx), "")
	defer f.stopTimer()
	exclusive := reg.Session().Exclusive
	for {
		st, changed := reg.StateAndChange()
		active, fenced := reg.Tenure()
		if err := f.step(ctx, st, exclusive, active, fenced); err != nil {
			return err
		}
		var expired <-chan time.Time
		if f.unregistered != nil {
			expired = f.unregistered.Chan()
		}
		var waitActive, waitFenced <-chan struct{}
		switch r.m.current() {
		case StateStandBy:
			waitActive = active
		case StateHealthy:
			if exclusive {
				waitFenced = f.fenced
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sv.served:
			return errors.Wrap(sv.err, "startup: gRPC server stopped serving")
		case <-reg.Done():
			return r.sessionEnded(reg)
		case <-changed:
		case <-waitActive:
		case <-waitFenced:
		case <-expired:
			f.unregistered = nil
			if err := r.to(StateAbnormal, "session not registered for "+r.cfg.AbnormalAfter.String()+
				": "+errText(reg.LastError())); err != nil {
				return err
			}
		}
	}
}

// step makes the state follow the session's state st and the tenure.
func (f *follower) step(ctx context.Context, st session.State, exclusive bool, active, fenced <-chan struct{}) error {
	r := f.r
	cur := r.m.current()
	if st != session.StateConnected {
		if f.unregistered == nil && st != session.StateClosed && cur != StateAbnormal {
			f.unregistered = r.o.clock.NewTimer(r.cfg.AbnormalAfter)
			r.log.Warn("session not registered; still serving until AbnormalAfter passes",
				zap.Stringer("session_state", st), zap.Duration("abnormal_after", r.cfg.AbnormalAfter),
				zap.String("cause", errText(f.reg.LastError())))
		}
	} else if f.stopTimer() && cur != StateAbnormal {
		r.log.Info("session registered again; it never stopped serving")
	}
	if exclusive && cur == StateHealthy && (f.fenced == nil || closed(f.fenced)) {
		f.endTerm(ctx, "the active term ended")
		return r.to(StateStandBy, "active term ended (fenced); standing by")
	}
	if st != session.StateConnected || cur == StateHealthy {
		return nil
	}
	// Connected, and not Healthy: Registering, StandBy or Abnormal.
	if exclusive && (!closed(active) || closed(fenced)) {
		if cur == StateStandBy {
			return nil
		}
		return r.to(StateStandBy, "registered; standing by for the active process")
	}
	reason := "registered"
	if cur == StateAbnormal {
		reason = "session registered again"
	}
	if exclusive {
		if err := f.beginTerm(ctx, fenced); err != nil {
			return err
		}
		reason += "; active"
	}
	return r.to(StateHealthy, reason)
}

// beginTerm calls Activate with a context that ends with the term, whose
// end is fenced.
func (f *follower) beginTerm(ctx context.Context, fenced <-chan struct{}) error {
	tctx, cancel := context.WithCancel(ctx)
	f.termCancel, f.fenced = cancel, fenced
	a, ok := f.r.comp.(Activator)
	if !ok {
		return nil
	}
	if err := a.Activate(tctx); err != nil {
		return errors.Wrap(err, "startup: Activate")
	}
	return nil
}

// endTerm cancels the active term's context and calls Deactivate, if a
// term is active.
func (f *follower) endTerm(ctx context.Context, reason string) {
	if f.termCancel == nil {
		return
	}
	f.termCancel()
	f.termCancel, f.fenced = nil, nil
	if reason == "" {
		return // stopping: the component's Stop follows
	}
	if d, ok := f.r.comp.(Deactivator); ok {
		if err := d.Deactivate(ctx); err != nil {
			f.r.log.Warn("Deactivate failed", zap.String("cause", errText(err)))
		}
	}
	f.r.log.Info("deactivated", zap.String("reason", reason))
}

// stopTimer stops the AbnormalAfter timer and reports whether one ran.
func (f *follower) stopTimer() bool {
	if f.unregistered == nil {
		return false
	}
	f.unregistered.Stop()
	f.unregistered = nil
	return true
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

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// errText is an error's message without a stack trace, for routine logs.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
