package startup

import (
	"context"
	"net"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/session"
)

// serving is the gRPC server of one Run: served is closed when Serve
// returned, after err is set.
type serving struct {
	srv    *grpc.Server
	served chan struct{}
	err    error
}

// Run registers the gRPC health service on srv and serves srv on lis at
// once (NOT_SERVING), then walks Init → dependencies → Start → register →
// Healthy (StandBy first for an exclusive role's standby), follows the
// session (Abnormal while its lease is lost), and when ctx ends stops
// gracefully: Stopping=true in etcd, the lame-duck wait (Config.LameDuck)
// still serving, Stopping (calls refused), the component's Stop
// concurrently with the drain of calls in flight, the server stopped, the
// lease revoked, Stopped. srv must be built with ServerOptions and not
// serve yet, and must not have a health service of its own.
//
// While it waits for required dependencies Run logs the roles still
// offline when the wait starts, and again every 10 s at Warn level, so a
// wait that lasts (a dependency down, or two components waiting for each
// other) says what it waits for.
//
// Run returns nil after a clean stop asked through ctx (or Close). It
// returns an error when a phase failed, a required dependency timed out
// under Strict (*DependencyTimeoutError), the session was lost under
// session.Exit (session.ErrLeaseLost), the server failed, or the stop was
// forced (ErrForcedStop); the component is stopped and the session revoked
// in every case. A Runner runs once.
func (r *Runner) Run(ctx context.Context, srv *grpc.Server, lis net.Listener) error {
	if srv == nil || lis == nil {
		return errors.New("startup: Run: server and listener are required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrClosed
	case r.ran:
		r.mu.Unlock()
		return ErrAlreadyRun
	}
	r.ran, r.cancelRun, r.runDone = true, cancel, make(chan struct{})
	runDone := r.runDone
	r.mu.Unlock()
	defer close(runDone)
	if r.force.Err() != nil {
		cancel()
	}

	pre := r.cfg.Session
	if pre.Address == "" {
		pre.Address = lis.Addr().String()
	}
	r.pre.Store(&pre)

	r.health.register(srv)
	sv := &serving{srv: srv, served: make(chan struct{})}
	go func() {
		sv.err = srv.Serve(lis)
		close(sv.served)
	}()
	r.log.Info("serving", zap.String("address", lis.Addr().String()))

	cause := r.bringUp(ctx, sv, pre)
	reg := r.reg.Load()
	if cause == nil && reg != nil {
		cause = r.follow(ctx, sv, reg)
	}
	if ctx.Err() != nil {
		// A stop was asked: what it interrupted is not a failure (a forced
		// stop is reported by shutdown).
		cause = nil
	}
	stopErr := r.shutdown(sv, reg, r.initDone.Load(), cause)
	return errors.Join(cause, stopErr)
}

// bringUp runs the phases up to the registration of the session. It
// returns nil once registered (follow then moves to Healthy or StandBy), or
// the reason it did not get there.
func (r *Runner) bringUp(ctx context.Context, sv *serving, pre session.Session) error {
	r.m.phaseBegins()
	if err := r.comp.Init(ctx); err != nil {
		return errors.Wrap(err, "startup: Init")
	}
	r.initDone.Store(true)
	if err := r.phase(ctx, sv, StateWaitingDependencies, "initialised"); err != nil {
		return err
	}
	stopReports := r.reportDependencyWait(ctx)
	err := r.waitDependencies(ctx)
	stopReports()
	if err != nil {
		return err
	}
	if err := r.phase(ctx, sv, StateStarting, "dependencies ready"); err != nil {
		return err
	}
	if err := r.comp.Start(ctx); err != nil {
		return errors.Wrap(err, "startup: Start")
	}
	if err := r.phase(ctx, sv, StateRegistering, "started"); err != nil {
		return err
	}
	sopts := append([]session.Option{session.WithLogger(r.o.logger)}, r.o.sessionOpts...)
	reg, err := session.Register(ctx, r.cli, pre, r.cfg.SessionConfig, sopts...)
	if err != nil {
		return errors.Wrap(err, "startup: register session")
	}
	r.reg.Store(reg)
	r.log.Info("session registered", zap.Int64("node_id", reg.Session().ServerID),
		zap.Int64("lease_id", reg.Session().LeaseID))
	return nil // follow moves to Healthy or StandBy
}

// phase moves to s unless the Runner must stop first.
func (r *Runner) phase(ctx context.Context, sv *serving, s State, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-sv.served:
		return errors.Wrap(sv.err, "startup: gRPC server stopped serving")
	default:
	}
	return r.to(s, reason)
}

// to makes a transition and sets the health status it implies. Health
// says SERVING only while the state is Healthy: it turns NOT_SERVING
// before the state leaves Healthy, and SERVING after it entered it.
func (r *Runner) to(s State, reason string) error {
	if s != StateHealthy {
		r.health.set(false)
	}
	if _, err := r.m.transition(s, reason); err != nil {
		r.log.Error("state transition refused", zap.Error(err))
		r.health.set(r.m.current() == StateHealthy)
		return err
	}
	if s == StateHealthy {
		r.health.set(true)
	}
	return nil
}

// dependencyReportInterval is how often a wait for dependencies that goes
// on is logged again.
const dependencyReportInterval = 10 * time.Second

// reportDependencyWait logs the required dependencies not online yet: at
// once (Info), then every dependencyReportInterval while some still are
// (Warn), until the returned func is called; that func waits for the
// reporting goroutine to end. Nothing is logged when no wait is due.
func (r *Runner) reportDependencyWait(ctx context.Context) (stop func()) {
	awaited := func() []string {
		var roles []string
		for _, d := range r.cfg.Dependencies {
			if !d.Optional && !r.mgr.IsRoleOnline(d.Role) {
				roles = append(roles, d.Role)
			}
		}
		return roles
	}
	roles := awaited()
	if len(roles) == 0 || r.cfg.DependencyTimeout == 0 {
		return func() {}
	}
	r.log.Info("waiting for required dependencies", zap.Strings("awaited", roles),
		zap.Duration("timeout", r.cfg.DependencyTimeout), zap.Stringer("policy", r.cfg.DependencyPolicy))
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := r.o.clock.Now()
	tick := r.o.clock.NewTicker(dependencyReportInterval)
	go func() {
		defer close(done)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.Chan():
			}
			if roles := awaited(); len(roles) > 0 {
				r.log.Warn("still waiting for required dependencies: not running, or waiting for this "+
					"process in turn (a dependency cycle: make one side Optional)",
					zap.Strings("awaited", roles), zap.Duration("waited", r.o.clock.Since(start)),
					zap.Duration("timeout", r.cfg.DependencyTimeout), zap.Stringer("policy", r.cfg.DependencyPolicy))
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
