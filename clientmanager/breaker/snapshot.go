package breaker

import "time"

// Snapshot is a breaker's status at one instant, for status pages and
// metrics.
type Snapshot struct {
	// State is the current state.
	State State
	// Generation identifies the current period: it starts at 1 and grows
	// by one on each transition.
	Generation uint64
	// ConsecutiveFailures is the number of failures recorded in a row.
	ConsecutiveFailures int
	// Requests and Failures are the calls (successes + failures) and the
	// failures recorded in the window. Probes are not counted; closing
	// starts a fresh window.
	Requests, Failures uint64
	// LastFailure is when the last failure was recorded; zero if none.
	LastFailure time.Time
	// OpenedAt is when the breaker last opened; zero if it never did.
	OpenedAt time.Time
	// BreakDuration is the break duration of the last opening.
	BreakDuration time.Duration
	// ConsecutiveOpens is the number of consecutive openings the break
	// duration grew over. An opening after a whole Window closed counts
	// as the first again.
	ConsecutiveOpens int
	// ProbesInFlight is the number of half-open probes not yet reported.
	ProbesInFlight int
}

// State returns the current state, first performing any transition that
// is due by time alone (open → half-open when the break is over, half-open
// → open when a probe outlived its lease). While closed it is one atomic
// load.
func (b *Breaker) State() State {
	w := b.word.Load()
	if wordState(w) == StateClosed {
		return StateClosed
	}
	if wordState(w) == StateOpen && b.now() < b.openUntil.Load() {
		return StateOpen
	}
	return b.Refresh()
}

// Refresh performs any transition that is due by time alone, rotates the
// sliding window to the current time, and returns the state. The router
// calls this for every node on its tick, so that a node that gets no
// traffic is still probed and its window still expires.
func (b *Breaker) Refresh() State {
	now := b.now()
	var p pending
	b.mu.Lock()
	b.advanceLocked(now, &p)
	b.win.rotateLocked(now)
	s := wordState(b.word.Load())
	b.mu.Unlock()
	b.finish(p)
	return s
}

// Snapshot returns the breaker's status, after the transitions that are
// due by time alone.
func (b *Breaker) Snapshot() Snapshot {
	now := b.now()
	var p pending
	b.mu.Lock()
	b.advanceLocked(now, &p)
	b.win.rotateLocked(now)
	w := b.word.Load()
	s, f := b.win.totals()
	snap := Snapshot{
		State:               wordState(w),
		Generation:          w >> stateBits,
		ConsecutiveFailures: int(b.consec.Load()),
		Requests:            s + f,
		Failures:            f,
		LastFailure:         b.at(b.lastFailure),
		OpenedAt:            b.at(b.openedAt),
		BreakDuration:       b.breakDur,
		ConsecutiveOpens:    b.opens,
	}
	for i := range b.probes {
		if b.probes[i].ticket != 0 {
			snap.ProbesInFlight++
		}
	}
	b.mu.Unlock()
	b.finish(p)
	return snap
}

// at converts ns since base to a time; negative means never.
func (b *Breaker) at(ns int64) time.Time {
	if ns < 0 {
		return time.Time{}
	}
	return b.base.Add(time.Duration(ns))
}
