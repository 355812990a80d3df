package startup

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

// Component is what a Runner runs. Init prepares it, Start makes it able to
// serve, Stop releases it. Each is called once, from Run's goroutine; Stop
// is called whenever Init returned nil, even if Start failed or never ran.
// The contexts of Init and Start end when the Runner is asked to stop.
type Component interface {
	Init(ctx context.Context) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Activator is the optional ability of a Component of an exclusive role to
// take over: Activate is called each time the process takes the role's
// active key (at once, after StandBy, or after a lost lease), before it
// becomes Healthy. An error stops the Runner.
type Activator interface {
	Activate(ctx context.Context) error
}

// Deactivator is the optional ability of a Component of an exclusive role
// to stop acting as the active process. Deactivate is called when the
// process's active term ends (see session.Registration.Tenure): at the
// latest at the last acknowledged keepalive + TTL − FenceMargin, before any
// standby can take the role, or when the key or lease is found lost. The
// context given to Activate is also cancelled at that moment. After
// Deactivate the Runner is in StateStandBy until the process wins the
// active key again and Activate is called anew. Its error is logged.
type Deactivator interface {
	Deactivate(ctx context.Context) error
}

// Runner runs one Component through its lifecycle; see the package doc.
// All its methods are safe for concurrent use.
type Runner struct {
	cli  *clientv3.Client
	mgr  ClientManager // nil without Dependencies
	cfg  Config
	comp Component
	o    options
	log  *zap.Logger

	m      *machine
	gate   *gate
	health *healthService

	pre atomic.Pointer[session.Session] // before registration: cfg.Session, Address filled by Run
	reg atomic.Pointer[session.Registration]

	initDone atomic.Bool // Init returned nil: Stop is due

	force       context.Context // done after ForceStop
	forceCancel context.CancelFunc

	mu        sync.Mutex
	ran       bool
	closed    bool
	cancelRun context.CancelFunc // ends Run's context; nil outside Run
	runDone   chan struct{}      // closed when Run returns; nil if never run
	done      chan struct{}      // closed by Close: ends subscriptions
	closeOnce sync.Once
	wg        sync.WaitGroup // subscription pumps
}

// ClientManager is what a Runner needs of the client manager: it adds the
// Config.Dependencies and waits for them. *clientmanager.Manager
// satisfies it.
type ClientManager interface {
	AddDependency(role string) error
	IsRoleOnline(role string) bool
	WatchClients(ctx context.Context, role string) <-chan clientmanager.ClientEvent
}

var _ ClientManager = (*clientmanager.Manager)(nil)

// New returns a Runner of c. mgr (typically a *clientmanager.Manager) may
// be nil when cfg has no Dependencies. Nothing starts before Run.
func New(cli *clientv3.Client, mgr ClientManager, cfg Config, c Component, opts ...Option) (*Runner, error) {
	if m, ok := mgr.(*clientmanager.Manager); ok && m == nil {
		mgr = nil // a nil *Manager is no manager
	}
	switch {
	case cli == nil:
		return nil, errors.New("startup: New: etcd client is nil")
	case c == nil:
		return nil, errors.New("startup: New: component is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if mgr == nil && len(cfg.Dependencies) > 0 {
		return nil, errors.Newf("startup: Dependencies (%d roles) need a client manager, but mgr is nil", len(cfg.Dependencies))
	}
	cfg.Dependencies = slices.Clone(cfg.Dependencies)
	cfg.GateAllowlist = slices.Clone(cfg.GateAllowlist)
	o := buildOptions(opts)
	log := o.logger.With(zap.String("role", cfg.Session.ServerName))
	m := newMachine(log, o.clock)
	m.phases = o.metrics.forRole(cfg.Session.ServerName)
	r := &Runner{
		cli:    cli,
		mgr:    mgr,
		cfg:    cfg,
		comp:   c,
		o:      o,
		log:    log,
		m:      m,
		gate:   newGate(m, cfg.GateAllowlist),
		health: newHealthService(cfg.Session.ServerName),
		done:   make(chan struct{}),
	}
	r.force, r.forceCancel = context.WithCancel(context.Background())
	if cfg.Session.Incarnation == "" {
		// Known before the session is put, so that the identity check
		// accepts calls addressed to this process from the first moment
		// its key is visible, before Register has returned.
		r.cfg.Session.Incarnation = session.NewIncarnation()
	}
	pre := r.cfg.Session
	r.pre.Store(&pre)
	return r, nil
}

// ServerOptions returns the interceptors to build the gRPC server with:
// with Config.TLS first its server credentials and the check of
// Config.AllowedCallerRoles, then the call's logger (Logger: the Runner's, with the call's request ID as
// correlation_id and its method), state gating (only Healthy serves, except the health service and
// Config.GateAllowlist), then the identity check against this process's
// current session (identity.Check). Before its session is
// registered the process has no identity: calls without one pass, calls
// that carry one are rejected.
func (r *Runner) ServerOptions() []grpc.ServerOption {
	return append(securityServerOptions(r.cfg), // Config.TLS: credentials and caller roles first
		grpc.ChainUnaryInterceptor(r.logUnary, r.gate.unary, identity.UnaryServerInterceptor(r.identity)),
		grpc.ChainStreamInterceptor(r.logStream, r.gate.stream, identity.StreamServerInterceptor(r.identity)),
		grpc.KeepaliveEnforcementPolicy(KeepalivePolicy()),
	)
}

// identity is the session calls are checked against: the registered one,
// or before registration Config.Session with its Incarnation (filled by
// New) and a LeaseID (-1) no caller can know: a call addressed to this
// process's Incarnation passes from the moment its key is visible, even
// before Register has returned (see identity.Check).
func (r *Runner) identity() session.Session {
	if reg := r.reg.Load(); reg != nil {
		// The check reads only the ids: no copy of the labels per call.
		id, inc, lease := reg.Identity()
		return session.Session{ServerID: id, Incarnation: inc, LeaseID: lease}
	}
	s := *r.pre.Load()
	s.LeaseID = -1
	return s
}

// State returns the current state without blocking.
func (r *Runner) State() State { return r.m.current() }

// Session returns the registered session (ServerID and the current LeaseID
// filled) once registered; before that, Config.Session with the address
// Run serves on.
func (r *Runner) Session() session.Session {
	if reg := r.reg.Load(); reg != nil {
		return reg.Session()
	}
	return *r.pre.Load()
}

// WaitForState returns nil once the Runner is in state s, now or later; a
// state passed through after the call counts. It returns ErrStopped when the
// Runner stopped without reaching s, or ctx's error.
func (r *Runner) WaitForState(ctx context.Context, s State) error { return r.m.waitFor(ctx, s) }

// Subscribe returns every transition in order, starting with the one that
// led to the current state (From = To = StateInitializing for a new
// Runner). A slow reader never blocks the Runner: its changes queue. The
// channel is closed after StateStopped, when ctx ends or on Close.
func (r *Runner) Subscribe(ctx context.Context) <-chan Transition {
	out := make(chan Transition)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		close(out)
		return out
	}
	sub := newSubscriber()
	r.m.attach(sub)
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer close(out)
		defer r.m.detach(sub)
		sub.pump(ctx, r.done, out)
	}()
	return out
}

// ForceStop asks Run to stop at once: a stop in progress ends its
// lame-duck wait and stops waiting for calls in flight, the component's
// Stop gets a cancelled context and the gRPC server stops without waiting. Run then returns ErrForcedStop. The
// lease is still revoked. Safe to call at any time, more than once.
func (r *Runner) ForceStop() {
	r.forceCancel()
	r.mu.Lock()
	cancel := r.cancelRun
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Close stops a running Run as the end of its context would, waits for it
// to return, then ends every subscription. A Runner cannot run after Close.
// Idempotent.
func (r *Runner) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		cancel, runDone := r.cancelRun, r.runDone
		r.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		if runDone != nil {
			<-runDone
		}
		close(r.done)
		r.health.endWatches()
	})
	r.wg.Wait()
	return nil
}
