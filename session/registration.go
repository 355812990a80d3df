package session

import (
	"context"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/errors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/retry"
)

// ErrLeaseLost is returned by Err after the lease was lost under LostPolicy
// Exit, and by MarkStopping when a key is no longer held by the
// registration's lease.
var ErrLeaseLost = errors.New("session: lease lost")

// ErrClosed is returned by MarkStopping when the Registration is closed.
var ErrClosed = errors.New("session: registration closed")

// ErrKeyExists is returned (wrapped) by Register when the session key of
// the ServerID is held by another lease: another live process registered
// with the same ServerID at another address.
var ErrKeyExists = errors.New("session: session key is held by another lease")

// Registration is one process's registered Session. It keeps the lease
// alive, says when the lease is lost, registers again (LostPolicy
// Reregister) and, for an exclusive role, contends for the active key.
// All its methods are safe for concurrent use.
type Registration struct {
	cli  *clientv3.Client
	cfg  Config
	o    options
	log  *zap.Logger
	role string

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the Registration

	// writeSem serialises the writes of session values (put, take-over,
	// MarkStopping), so a value written never misses Stopping.
	writeSem chan struct{}

	// serverID and leaseID mirror sess for Identity, which is on the path
	// of every incoming call and takes no lock.
	serverID    atomic.Int64
	leaseID     atomic.Int64
	incarnation string       // fixed for the Registration's life
	rtt         atomic.Int64 // decaying maximum etcd round trip, ns

	mu         sync.Mutex
	sess       Session          // ServerID and the current term's LeaseID
	cur        *term            // nil until the first registration
	lease      clientv3.LeaseID // latest lease granted: what Close revokes
	stopping   bool
	registered bool // ready is closed
	active     bool // activeCh is closed
	lostClosed bool // lost is closed
	lost       chan struct{}
	ready      chan struct{}
	activeCh   chan struct{}
	fencedCh   chan struct{} // closed when the current (or next) active term ends
	err        error
	state      State
	changed    chan struct{} // closed at the next state change
	lastErr    error

	done      chan struct{}
	doneOnce  sync.Once
	closeOnce sync.Once
	closed    chan struct{} // closed when the first Close has finished
	closeErr  error
}

// Register puts s under cfg and keeps it there until Close.
//
// s.ServerName is the role and s.Address is required; a zero s.ServerID is
// allocated from the counter at cfg.IDKey() by the transaction that puts
// the session, a positive one is used as is. With a zero s.ServerID the
// lease is granted under an ID Register chooses, through cli's connection
// rather than cli.Lease, and the transaction is sent as soon as the
// counter is read, with the grant still in flight: about the time of two
// etcd writes in a row in all.
// s.LeaseID and s.Stopping are set by the Registration; an empty
// s.HostName is filled with the machine's host name. When cfg.ReplaceStale
// is set, sessions of the same role at the same Address (a previous run of
// this process) are revoked before Register returns. For an exclusive
// role Register also tries to take the active key; if another process
// holds it the Registration is a standby and takes the key when it frees
// (see Active).
//
// The lease is kept alive from the moment it is granted. When no keepalive
// is acknowledged before the local deadline (last acknowledgement + TTL −
// FenceMargin) the Registration is Disconnected, not lost: the keys stay,
// and as soon as etcd answers it says whether the lease lives (a new etcd
// leader extends every lease), in which case the same lease resumes with
// no new key and no event. Only a lease that etcd says is gone is lost (see
// Lost and Config.LostPolicy): the Registration then grants a new lease and
// registers the same ServerID and Incarnation again; keys that etcd still
// holds under the old lease move to the new one. See State and Tenure.
//
// ctx bounds Register only; the Registration lives until Close. Nothing is
// written to etcd when cfg or s is invalid.
func Register(ctx context.Context, cli *clientv3.Client, s Session, cfg Config, opts ...Option) (*Registration, error) {
	if cli == nil {
		return nil, errors.New("session: Register: client is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := validateSession(s); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	s.LeaseID, s.Stopping = 0, false
	s.ServerLabels = maps.Clone(s.ServerLabels)
	if s.HostName == "" {
		s.HostName, _ = os.Hostname()
	}
	if s.Incarnation == "" {
		s.Incarnation = NewIncarnation()
	}
	var r *Registration
	var t *term
	if s.ServerID == 0 {
		var err error
		if r, t, err = registerNew(ctx, cli, s, cfg, o); err != nil {
			return nil, err
		}
	} else {
		r = newRegistration(cli, s, cfg, o)
		var err error
		if t, err = r.establish(ctx, cfg.Retry, 0, true); err != nil {
			r.cancel()
			r.wg.Wait()
			return nil, errors.Wrapf(err, "session: register %s", s)
		}
	}
	r.install(t, false)
	r.wg.Add(1)
	go r.run(t)
	return r, nil
}

func validateSession(s Session) error {
	if err := ValidateRole(s.ServerName); err != nil {
		return errors.Wrap(err, "session: ServerName")
	}
	switch {
	case strings.TrimSpace(s.Address) == "":
		return errors.Newf("session: Address (%q) must not be empty", s.Address)
	case s.ServerID < 0:
		return errors.Newf("session: ServerID (%d) must be ≥ 0 (0 allocates one)", s.ServerID)
	}
	return nil
}

func newRegistration(cli *clientv3.Client, s Session, cfg Config, o options) *Registration {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Registration{
		cli:      cli,
		cfg:      cfg,
		o:        o,
		log:      o.logger.With(zap.String("role", s.ServerName), zap.Int64("node_id", s.ServerID)),
		role:     s.ServerName,
		ctx:      ctx,
		cancel:   cancel,
		writeSem: make(chan struct{}, 1),
		sess:     s,
		lost:     make(chan struct{}),
		ready:    make(chan struct{}),
		activeCh: make(chan struct{}),
		fencedCh: make(chan struct{}),
		state:    StateConnected,
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
		closed:   make(chan struct{}),
	}
	r.serverID.Store(s.ServerID)
	r.incarnation = s.Incarnation
	return r
}

// Identity returns the ServerID, the Incarnation and the current LeaseID
// without a lock or an allocation, for per-call identity checks.
func (r *Registration) Identity() (serverID int64, incarnation string, leaseID int64) {
	return r.serverID.Load(), r.incarnation, r.leaseID.Load()
}

// Session returns the registered record: ServerID and the current
// incarnation's LeaseID filled.
func (r *Registration) Session() Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sess
	s.ServerLabels = maps.Clone(s.ServerLabels)
	return s
}

// Lost returns a channel closed when etcd says the current lease is gone
// (not when it merely cannot be reached: see State). After a
// re-registration it returns a new, open channel.
func (r *Registration) Lost() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

// Ready returns a channel closed while the current lease is registered
// (Connected or Disconnected). After a lost lease it returns a new channel, closed when the
// Registration has registered again.
func (r *Registration) Ready() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready
}

// Active returns a channel closed while this process holds its role: at
// once for a non-exclusive role, during an active term (see Tenure) for an
// exclusive one. After the term ends it returns a new channel.
func (r *Registration) Active() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.activeCh
}

// IsActive reports whether Active is closed now.
func (r *Registration) IsActive() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active
}

// Done returns a channel closed when the Registration has ended for good:
// after Close, or when the lease was lost under LostPolicy Exit.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Err returns ErrLeaseLost once the lease was lost under LostPolicy Exit,
// nil otherwise.
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Registration) closeDone() { r.doneOnce.Do(func() { close(r.done) }) }

// acquireWrite takes writeSem, or fails when ctx ends or the Registration
// is closed.
func (r *Registration) acquireWrite(ctx context.Context) error {
	select {
	case r.writeSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.ctx.Done():
		return ErrClosed
	}
}

func (r *Registration) releaseWrite() { <-r.writeSem }

func (r *Registration) rand() float64 {
	if r.o.rand != nil {
		return r.o.rand()
	}
	return rand.Float64()
}

func retryOptions(o options) []retry.Option {
	opts := []retry.Option{retry.WithClock(o.clock), retry.RetryIf(retryableEtcd)} // credentials etcd rejects: no retry
	if o.rand != nil {
		opts = append(opts, retry.WithRand(o.rand))
	}
	return opts
}

func leaseField(id clientv3.LeaseID) zap.Field { return zap.Int64("lease_id", int64(id)) }

// State returns the Registration's state now.
func (r *Registration) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// StateChanged returns a channel closed at the next change of State after
// the call (as grpc's WaitForStateChange): read State, then wait on the
// channel got before or with it.
func (r *Registration) StateChanged() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// StateAndChange returns State and StateChanged read together, so no change
// between the two is missed.
func (r *Registration) StateAndChange() (State, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, r.changed
}

// LastError returns why the last keepalive or re-registration attempt
// failed, or nil once the session is Connected again.
func (r *Registration) LastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Tenure returns the channels of this process's current (or next) term as
// the active process of its role: active is closed when the term starts,
// fenced when it ends. For a non-exclusive role active is closed at once and
// fenced is never closed.
//
// An exclusive role's term starts when the process holds the active key
// with an acknowledged lease. It ends — fenced closes — at the latest at the
// last acknowledged keepalive + TTL − FenceMargin, that is before etcd can
// expire the lease and hand the key to a standby, or at once when the key or
// the lease is found lost, or on Close. A process must stop acting as the
// active one when fenced closes; it may act again only when the active
// channel of a later Tenure closes. Both channels are read together so
// that no term is missed.
func (r *Registration) Tenure() (active, fenced <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.activeCh, r.fencedCh
}
