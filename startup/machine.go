package startup

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// machine holds the current state and makes every change observable: a
// lock-free read of the state, waiters, ordered subscriptions and one log
// line per change. Only the table decides which change is allowed.
type machine struct {
	log   *zap.Logger
	clock clockwork.Clock
	state atomic.Int32 // mirror of last.To for lock-free reads
	// phases records how long each phase lasted; nil: not recorded.
	phases *phaseGauges

	mu      sync.Mutex
	last    Transition                // the change that led to the current state
	phaseAt time.Time                 // when the current phase began: last.At, or Run's start
	waiters map[State][]chan struct{} // closed when their state is entered
	stopped chan struct{}             // closed on StateStopped
	subs    map[*subscriber]struct{}
}

func newMachine(log *zap.Logger, clock clockwork.Clock) *machine {
	now := clock.Now()
	return &machine{
		log:     log,
		clock:   clock,
		last:    Transition{From: StateInitializing, To: StateInitializing, At: now, Reason: "created"},
		phaseAt: now,
		waiters: make(map[State][]chan struct{}),
		stopped: make(chan struct{}),
		subs:    make(map[*subscriber]struct{}),
	}
}

// phaseBegins restarts the clock of the current phase: the Initializing
// phase lasts from Run's start, not from New.
func (m *machine) phaseBegins() {
	m.mu.Lock()
	m.phaseAt = m.clock.Now()
	m.mu.Unlock()
}

// current returns the state without taking a lock.
func (m *machine) current() State { return State(m.state.Load()) }

// transition moves to `to` if the table allows it from the current state;
// otherwise it returns an *IllegalTransitionError and changes nothing.
func (m *machine) transition(to State, reason string) (Transition, error) {
	m.mu.Lock()
	from := m.last.To
	if !CanTransition(from, to) {
		m.mu.Unlock()
		return Transition{}, &IllegalTransitionError{From: from, To: to}
	}
	t := Transition{From: from, To: to, At: m.clock.Now(), Reason: reason}
	m.phases.ended(from, t.At.Sub(m.phaseAt))
	m.last, m.phaseAt = t, t.At
	m.state.Store(int32(to))
	for _, ch := range m.waiters[to] {
		close(ch)
	}
	delete(m.waiters, to)
	for s := range m.subs {
		s.push(t)
	}
	if to == StateStopped {
		close(m.stopped)
	}
	m.mu.Unlock()

	level := zap.InfoLevel
	if to == StateAbnormal {
		level = zap.WarnLevel
	}
	m.log.Log(level, "state changed",
		zap.Stringer("from", from), zap.Stringer("to", to), zap.String("reason", reason))
	return t, nil
}

// waitFor returns nil once the state is s (now or later), ErrStopped when
// the machine stopped in another state, or ctx's error.
func (m *machine) waitFor(ctx context.Context, s State) error {
	m.mu.Lock()
	switch m.last.To {
	case s:
		m.mu.Unlock()
		return nil
	case StateStopped:
		m.mu.Unlock()
		return ErrStopped
	}
	ch := make(chan struct{})
	m.waiters[s] = append(m.waiters[s], ch)
	stopped := m.stopped
	m.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-stopped:
		select {
		case <-ch:
			return nil
		default:
			return ErrStopped
		}
	case <-ctx.Done():
		m.dropWaiter(s, ch)
		return ctx.Err()
	}
}

func (m *machine) dropWaiter(s State, ch chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ws := m.waiters[s]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(m.waiters, s)
	} else {
		m.waiters[s] = ws
	}
}

// attach registers a subscriber whose queue starts with the change that
// led to the current state. It reports whether that state is final, in
// which case nothing more will be pushed.
func (m *machine) attach(s *subscriber) (final bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.push(m.last)
	if m.last.To == StateStopped {
		return true
	}
	m.subs[s] = struct{}{}
	return false
}

func (m *machine) detach(s *subscriber) {
	m.mu.Lock()
	delete(m.subs, s)
	m.mu.Unlock()
}
