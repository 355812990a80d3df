package session_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// interval is one active term as its process saw it.
type interval struct {
	who        int
	start, end time.Time // end is zero while the term lasts
}

// termLog records the active terms of several registrations, as a
// component acting on Tenure would see them.
type termLog struct {
	mu    sync.Mutex
	terms []interval
	wg    sync.WaitGroup
}

func (l *termLog) follow(who int, r *session.Registration) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			active, fenced := r.Tenure()
			select {
			case <-active:
			case <-r.Done():
				return
			}
			l.mu.Lock()
			i := len(l.terms)
			l.terms = append(l.terms, interval{who: who, start: time.Now()})
			l.mu.Unlock()
			<-fenced // Close fences an active term first
			l.mu.Lock()
			l.terms[i].end = time.Now()
			l.mu.Unlock()
		}
	}()
}

// activeNow returns who is in an active term now, or -1.
func (l *termLog) activeNow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, iv := range l.terms {
		if iv.end.IsZero() {
			return iv.who
		}
	}
	return -1
}

// requireNoOverlap fails if two terms overlap in time.
func (l *termLog) requireNoOverlap(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, a := range l.terms {
		for _, b := range l.terms[i+1:] {
			aEnd, bEnd := a.end, b.end
			if aEnd.IsZero() {
				aEnd = time.Now()
			}
			if bEnd.IsZero() {
				bEnd = time.Now()
			}
			require.False(t, a.start.Before(bEnd) && b.start.Before(aEnd),
				"process %d active %s–%s overlaps process %d active %s–%s",
				a.who, a.start.Format("15:04:05.000"), aEnd.Format("15:04:05.000"),
				b.who, b.start.Format("15:04:05.000"), bEnd.Format("15:04:05.000"))
		}
	}
}

// TestFencedActiveTermsNeverOverlap cuts the active process of an exclusive
// role off from etcd (a black-hole proxy) while a standby takes over, 20
// times, and asserts from the active terms each process saw that two
// processes were never active at the same instant: the cut-off process
// stops acting at its local deadline, before etcd expires its lease and
// hands the key to the standby.
func TestFencedActiveTermsNeverOverlap(t *testing.T) {
	if testing.Short() {
		t.Skip("20 fencing rounds take about a minute")
	}
	const rounds = 20
	m := etcdtest.Start(t)
	cfg := regConfig(2 * time.Second)
	var proxies [2]*etcdtest.Proxy
	var regs [2]*session.Registration
	log := &termLog{}
	t.Cleanup(log.wg.Wait) // after the registrations' Close (cleanups run last first)
	for i := range regs {
		proxies[i] = etcdtest.NewProxy(t, m.Endpoint())
		cli := etcdtest.NewClient(t, proxies[i].Addr())
		regs[i] = regMust(t, cli, regSession("rootcoord", "10.0.0.1:"+string(rune('1'+i)), true), cfg)
		log.follow(i, regs[i])
	}
	require.Eventually(t, func() bool { return log.activeNow() == 0 }, 5*time.Second, 5*time.Millisecond)

	var gaps []time.Duration
	for round := range rounds {
		from := log.activeNow()
		require.NotEqual(t, -1, from, "round %d: someone is active", round)
		to := 1 - from
		proxies[from].Cut(t)
		require.Eventually(t, func() bool { return log.activeNow() == to }, cfg.TTL+5*time.Second, 5*time.Millisecond,
			"round %d: process %d takes over", round, to)
		log.requireNoOverlap(t)
		proxies[from].Restore(t)
		require.Eventually(t, func() bool {
			return regs[from].State() == session.StateConnected && !regs[from].IsActive()
		}, 15*time.Second, 5*time.Millisecond, "round %d: process %d is a standby again", round, from)
		log.mu.Lock()
		n := len(log.terms)
		gaps = append(gaps, log.terms[n-1].start.Sub(log.terms[n-2].end))
		log.mu.Unlock()
	}
	log.requireNoOverlap(t)
	t.Logf("gaps: %v", gaps)
	t.Logf("%d takeovers, no overlap; gap between the fenced end and the next start: min %s, max %s",
		rounds, minDur(gaps), maxDur(gaps))
	for _, r := range regs {
		require.NoError(t, r.Close(regCtx(t)))
	}
}

func minDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
