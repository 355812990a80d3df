package breaker

import (
	"math"
	"time"
)

// pending is what a slow path must do after it drops the lock.
type pending struct {
	changed  bool   // a transition happened: deliver events
	openWord uint64 // non-zero: the breaker opened in this word; compute its break
	opens    int    // consecutive openings at that opening
}

// allowSlow admits or refuses a call while the breaker is not closed.
func (b *Breaker) allowSlow() (Token, error) {
	now := b.now()
	// Refuse without the lock while the break is running.
	if w := b.word.Load(); wordState(w) == StateOpen && now < b.openUntil.Load() && b.word.Load() == w {
		return Token{}, ErrOpen
	}
	var (
		p   pending
		tok Token
		err error
	)
	b.mu.Lock()
	b.advanceLocked(now, &p)
	w := b.word.Load()
	switch wordState(w) {
	case StateClosed:
		tok = Token{w: w}
	case StateOpen:
		err = ErrOpen
	case StateHalfOpen:
		tok, err = b.acquireProbeLocked(w, now)
	}
	b.mu.Unlock()
	b.finish(p)
	return tok, err
}

// acquireProbeLocked hands out a probe permit if one is free and fewer
// than HalfOpenProbes probes succeeded or are running.
func (b *Breaker) acquireProbeLocked(w uint64, now int64) (Token, error) {
	free := -1
	running := 0
	for i := range b.probes {
		if b.probes[i].ticket != 0 {
			running++
		} else if free < 0 {
			free = i
		}
	}
	if free < 0 || running+b.probeOK >= b.cfg.HalfOpenProbes {
		return Token{}, ErrTooManyProbes
	}
	b.probeSeq++
	if b.probeSeq == 0 { // wrapped: 0 means "not a probe"
		b.probeSeq = 1
	}
	b.probes[free] = probe{ticket: b.probeSeq, deadline: now + int64(b.cfg.ProbeLease)}
	return Token{w: w, ticket: b.probeSeq}, nil
}

// recordSlow handles every result but a closed-path success.
func (b *Breaker) recordSlow(tok Token, o Outcome) {
	if tok.ticket == 0 && o != Failure {
		return // Excluded (or unknown) while closed decides nothing
	}
	if b.word.Load() != tok.w {
		return // late result from an earlier generation
	}
	now := b.now()
	var p pending
	b.mu.Lock()
	b.advanceLocked(now, &p)
	if b.word.Load() == tok.w {
		if tok.ticket == 0 {
			b.closedFailureLocked(now, &p)
		} else {
			b.probeResultLocked(tok.ticket, o, now, &p)
		}
	}
	b.mu.Unlock()
	b.finish(p)
}

// closedFailureLocked counts a failure and opens the breaker if a
// threshold is reached.
func (b *Breaker) closedFailureLocked(now int64, p *pending) {
	b.win.rotateLocked(now)
	b.win.addFailureLocked()
	b.lastFailure = now
	c := b.consec.Add(1)
	if n := b.cfg.ConsecutiveFailures; n > 0 && c >= int64(n) {
		b.openLocked(now, p)
		return
	}
	if b.cfg.FailureRatio > 0 {
		s, f := b.win.totals()
		if total := s + f; total >= uint64(b.cfg.MinimumThroughput) && float64(f)/float64(total) >= b.cfg.FailureRatio {
			b.openLocked(now, p)
		}
	}
}

// probeResultLocked returns the permit of ticket and applies the outcome.
// A ticket that holds no permit (already reported) is ignored.
func (b *Breaker) probeResultLocked(ticket uint32, o Outcome, now int64, p *pending) {
	slot := -1
	for i := range b.probes {
		if b.probes[i].ticket == ticket {
			slot = i
			break
		}
	}
	if slot < 0 {
		return
	}
	b.probes[slot] = probe{}
	switch o {
	case Success:
		b.probeOK++
		if b.probeOK >= b.cfg.HalfOpenProbes {
			b.closeLocked(now, p)
		}
	case Failure:
		b.lastFailure = now
		b.consec.Add(1)
		b.openLocked(now, p)
	}
}

// advanceLocked performs the transitions that time alone causes: open →
// half-open when the break is over, and half-open → open when a probe
// outlived its lease.
func (b *Breaker) advanceLocked(now int64, p *pending) {
	switch wordState(b.word.Load()) {
	case StateOpen:
		if now >= b.openUntil.Load() {
			clear(b.probes)
			b.probeOK = 0
			b.setLocked(StateHalfOpen, p)
		}
	case StateHalfOpen:
		for i := range b.probes {
			if d := b.probes[i].deadline; b.probes[i].ticket != 0 && now >= d {
				b.lastFailure = d
				b.consec.Add(1)
				b.openLocked(now, p)
				return
			}
		}
	}
}

// openLocked opens the breaker. The break duration is computed after the
// lock is dropped (it may call user code), so until then the break has
// no end.
func (b *Breaker) openLocked(now int64, p *pending) {
	if wordState(b.word.Load()) == StateClosed && now-b.closedAt >= int64(b.cfg.Window) {
		b.opens = 0 // a clean closed period resets the growth
	}
	b.opens++
	b.openedAt = now
	b.openUntil.Store(math.MaxInt64)
	clear(b.probes)
	b.probeOK = 0
	if b.setLocked(StateOpen, p) {
		p.openWord = b.word.Load()
		p.opens = b.opens
	}
}

// closeLocked closes the breaker with a fresh window.
func (b *Breaker) closeLocked(now int64, p *pending) {
	b.consec.Store(0)
	b.win.resetLocked(now)
	b.closedAt = now
	b.setLocked(StateClosed, p)
}

// setLocked moves to state to in a new generation and queues the event.
func (b *Breaker) setLocked(to State, p *pending) bool {
	w := b.word.Load()
	from := wordState(w)
	if !canTransition(from, to) {
		return false
	}
	b.word.Store(makeWord(w>>stateBits+1, to))
	b.events = append(b.events, event{from: from, to: to, opens: b.opens})
	p.changed = true
	return true
}

// finish runs what a slow path left for after the lock: the break
// duration of a new opening, then the listeners.
func (b *Breaker) finish(p pending) {
	if p.openWord != 0 {
		d := b.breakFor(p.opens)
		b.mu.Lock()
		if b.word.Load() == p.openWord {
			b.breakDur = d
			b.openUntil.Store(b.openedAt + int64(d))
		}
		b.mu.Unlock()
	}
	if p.changed {
		b.drain()
	}
}

// breakFor returns the break duration of the n-th consecutive opening:
// BreakDuration·2ⁿ⁻¹ capped at MaxBreakDuration, less up to BreakJitter of
// it at random; or BreakDurationFunc(n) when set.
func (b *Breaker) breakFor(n int) time.Duration {
	if f := b.cfg.BreakDurationFunc; f != nil {
		return max(f(n), 0)
	}
	d, limit := b.cfg.BreakDuration, b.cfg.MaxBreakDuration
	for i := 1; i < n && d < limit; i++ {
		if d > limit/2 {
			d = limit
			break
		}
		d *= 2
	}
	d = min(d, limit)
	if j := b.cfg.BreakJitter; j > 0 {
		r := b.rand()
		if r < 0 || r >= 1 || math.IsNaN(r) {
			r = 0
		}
		d -= time.Duration(float64(d) * j * r)
	}
	return d
}
