package breaker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// The state word holds the state in its low bits and the generation above
// them. Every transition increments the generation, so the word alone
// identifies one period of one state. Generations start at 1, so the zero
// Token never matches.
const (
	stateBits = 2
	stateMask = 1<<stateBits - 1
)

func makeWord(gen uint64, s State) uint64 { return gen<<stateBits | uint64(s) }

func wordState(w uint64) State { return State(w & stateMask) }

// Token is handed out by Allow and given back to Record with the call's
// result. It is a small value; copying it is free.
type Token struct {
	w      uint64 // state word at admission
	ticket uint32 // probe ticket while half-open; 0 for a closed-state call
}

// Probe reports whether the call is a half-open probe.
func (t Token) Probe() bool { return t.ticket != 0 }

// Breaker is a circuit breaker for one node. Its methods are safe for
// concurrent use. It starts no goroutines and needs no Close.
type Breaker struct {
	// Read on every call; written only on transitions and rotations.
	word   atomic.Uint64
	consec atomic.Int64 // consecutive failures
	win    window
	_      [cacheLine]byte

	openUntil atomic.Int64 // ns since base when the break ends; MaxInt64 while it is being computed

	cfg   Config
	clock clockwork.Clock
	base  time.Time // clock reading at construction; times are ns since base
	rand  func() float64
	log   *zap.Logger
	lis   []func(from, to State)

	mu          sync.Mutex
	opens       int   // consecutive openings, for the break schedule
	openedAt    int64 // ns since base of the last opening; -1 before the first
	closedAt    int64 // ns since base of the last closing
	lastFailure int64 // ns since base; -1 before the first
	breakDur    time.Duration
	probes      []probe // half-open permits
	probeSeq    uint32  // last ticket handed out
	probeOK     int     // probe successes in this half-open period
	events      []event // transitions not yet delivered to listeners
	draining    bool    // a goroutine is delivering events
}

// probe is a half-open permit; ticket 0 means free.
type probe struct {
	ticket   uint32
	deadline int64 // ns since base when the lease ends
}

// New returns a closed Breaker after validating cfg.
func New(cfg Config, opts ...Option) (*Breaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	b := &Breaker{
		win:         newWindow(cfg.Window, cfg.Buckets),
		cfg:         cfg,
		clock:       o.clock,
		base:        o.clock.Now(),
		rand:        o.rand,
		log:         o.logger,
		lis:         o.listeners,
		openedAt:    -1,
		lastFailure: -1,
		probes:      make([]probe, cfg.HalfOpenProbes),
	}
	b.word.Store(makeWord(1, StateClosed))
	return b, nil
}

// now returns the clock reading in ns since base.
func (b *Breaker) now() int64 {
	if d := b.clock.Since(b.base); d > 0 {
		return int64(d)
	}
	return 0
}

// Allow asks whether a call may go to the node. On success the caller
// must report the call's result with Record (or Done) and the token. It
// returns ErrOpen while open and ErrTooManyProbes when half-open with no
// free probe permit. The closed path is one atomic load.
func (b *Breaker) Allow() (Token, error) {
	if w := b.word.Load(); wordState(w) == StateClosed {
		return Token{w: w}, nil
	}
	return b.allowSlow()
}

// Record reports the outcome of a call admitted with tok. A token from an
// earlier generation (the breaker changed state since) is ignored, and so
// is a second report of the same probe. A success on the closed path is
// lock-free and allocation-free.
func (b *Breaker) Record(tok Token, o Outcome) {
	if o == Success && tok.ticket == 0 {
		if b.word.Load() != tok.w {
			return
		}
		if b.consec.Load() != 0 {
			b.consec.Store(0)
		}
		if idx, n, due := b.win.addSuccess(); due {
			b.refreshWindow(idx, n)
		}
		return
	}
	b.recordSlow(tok, o)
}

// Done classifies err with Classify and records the outcome.
func (b *Breaker) Done(tok Token, err error, callerCtx context.Context) {
	b.Record(tok, b.Classify(err, callerCtx))
}

// Classify is the package-level Classify with Config.Classifier, if set,
// in place of ClassifyError.
func (b *Breaker) Classify(err error, callerCtx context.Context) Outcome {
	if b.cfg.Classifier == nil || err == nil || (callerCtx != nil && callerCtx.Err() != nil) {
		return Classify(err, callerCtx)
	}
	return b.cfg.Classifier(err)
}

// refreshWindow reads the clock after the count-th success of bucket idx:
// it dates those successes if the window has not moved on, and rotates
// the window if it has. It skips the rotation when another goroutine
// holds the lock; the next read carries the successes instead.
func (b *Breaker) refreshWindow(idx uint32, count uint64) {
	now := b.now()
	if !b.win.due(now) {
		b.win.dateLockFree(idx, count)
		return
	}
	if b.mu.TryLock() {
		b.win.rotateLocked(now)
		b.mu.Unlock()
	}
}
