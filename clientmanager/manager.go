package clientmanager

import (
	"context"
	"maps"
	"sync"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

// Manager keeps one Client per live node of each dependency and makes calls
// to them. All its methods are safe for concurrent use.
type Manager struct {
	cli     *clientv3.Client
	cfg     Config
	log     *zap.Logger
	clock   clockwork.Clock
	dialer  Dialer
	metrics *metrics
	// smetrics are the session metrics of the manager's watchers.
	smetrics *session.Metrics
	reg      *registry
	dialSem  chan struct{}        // one slot per dial attempt in progress
	reqIDs   *identity.RequestIDs // request IDs of calls, and IDs of dial attempts

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the manager

	mu        sync.Mutex
	roles     map[string]*role
	closed    bool
	closeOnce sync.Once
}

// New validates cfg and returns a Manager with no dependency yet; it starts
// no goroutine and makes no request. Call AddDependency for each role the
// process calls, and Close when done.
func New(cli *clientv3.Client, cfg Config, opts ...Option) (*Manager, error) {
	if cli == nil {
		return nil, errors.New("clientmanager: New: cli must not be nil")
	}
	return newManager(cli, cfg, opts...)
}

func newManager(cli *clientv3.Client, cfg Config, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.VersionRange = maps.Clone(cfg.VersionRange)
	o := buildOptions(opts)
	mt, err := newMetrics(o.registerer)
	if err != nil {
		return nil, err
	}
	sm := o.sessionMetrics
	if sm == nil {
		if sm, err = session.NewMetrics(o.registerer); err != nil {
			return nil, errors.Wrap(err, "clientmanager: session metrics (share one with WithSessionMetrics)")
		}
	}
	dialer := o.dialer
	if dialer == nil {
		dialer = NewGRPCDialer(dialOptions(cfg, o)...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgr := &Manager{
		cli:      cli,
		cfg:      cfg,
		log:      o.logger,
		clock:    o.clock,
		dialer:   dialer,
		metrics:  mt,
		smetrics: sm,
		reg:      newRegistry(o.clock, mt),
		dialSem:  make(chan struct{}, cfg.MaxParallelDials),
		reqIDs:   identity.NewRequestIDs(),
		ctx:      ctx,
		cancel:   cancel,
		roles:    make(map[string]*role),
	}
	mt.bindStatus(mgr.Status)
	return mgr, nil
}

// AddDependency starts following role's sessions: its nodes are dialed as
// they appear and become available to GetClient, Invoke and friends. It
// returns at once, and does nothing if role is already a dependency. It
// returns ErrClosed after Close.
func (m *Manager) AddDependency(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, ok := m.roles[name]; ok {
		return nil
	}
	bal, err := balancer.New(m.cfg.Balancer, balancer.WithClock(m.clock))
	if err != nil {
		return errors.Wrapf(err, "clientmanager: balancer of %q", name)
	}
	wc := session.DefaultWatchConfig(name)
	wc.VersionRange = m.cfg.VersionRange[name]
	w, err := session.NewWatcher(m.cli, m.cfg.SessionConfig, wc,
		session.WithLogger(m.log), session.WithClock(m.clock), session.WithMetrics(m.smetrics))
	if err != nil {
		return errors.Wrapf(err, "clientmanager: watch %q", name)
	}
	shared := m.newRoleShared(name)
	r := &role{m: m, name: name, bal: bal, shared: shared, w: w, log: m.log.With(zap.String("role", name))}
	if len(m.roles) == 0 {
		m.goFunc(m.refreshBreakers)
	}
	m.roles[name] = r
	m.reg.addRole(name, bal, shared)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		r.run(m.ctx)
	}()
	r.log.Info("dependency added")
	return nil
}

// Close stops every watcher, connector and subscription, cancels the calls
// in flight and closes every connection once they have returned. It is
// safe to call more than once and always returns nil.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		roles := make([]*role, 0, len(m.roles))
		for _, r := range m.roles {
			roles = append(roles, r)
		}
		m.mu.Unlock()
		m.cancel()
		for _, r := range roles {
			_ = r.w.Close()
		}
		m.wg.Wait()
		m.reg.close()
		m.log.Info("client manager closed")
	})
	return nil
}

// goFunc runs f in a goroutine owned by the manager. The caller must itself
// run in such a goroutine (or hold m.mu while the manager is open), so that
// Close waits for f.
func (m *Manager) goFunc(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}
