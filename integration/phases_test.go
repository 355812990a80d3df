//go:build integration

package integration

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
)

// snapshot returns the outcomes recorded so far.
func (l *load) snapshot() []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.outcomes)
}

// succeeded returns the number of calls that succeeded so far.
func (l *load) succeeded() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.outcomes {
		if o.err == nil {
			n++
		}
	}
	return n
}

// waitCalls waits until n more calls have been recorded.
func (l *load) waitCalls(t *testing.T, n int) {
	t.Helper()
	base := l.count()
	require.Eventually(t, func() bool { return l.count() >= base+n }, procWait, 5*time.Millisecond,
		"%d more calls", n)
}

// waitSuccess waits for a call started at or after since to succeed and
// returns when that call returned.
func (l *load) waitSuccess(t *testing.T, since time.Time) time.Time {
	t.Helper()
	var at time.Time
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, o := range l.outcomes {
			if o.err == nil && !o.start.Before(since) && (at.IsZero() || o.at.Before(at)) {
				at = o.at
			}
		}
		return !at.IsZero()
	}, procWait, 5*time.Millisecond, "a call succeeds")
	return at
}

// timeline names the phases of a scenario: each mark begins one, and a
// call belongs to the phase in which it started.
type timeline struct {
	marks []mark
}

// mark is a named moment: the start of a phase.
type mark struct {
	name string
	at   time.Time
}

// mark begins phase name now and returns the time.
func (tl *timeline) mark(name string) time.Time {
	at := time.Now()
	tl.marks = append(tl.marks, mark{name: name, at: at})
	return at
}

// markAt begins phase name at at, which must not come before the last
// mark.
func (tl *timeline) markAt(name string, at time.Time) {
	tl.marks = append(tl.marks, mark{name: name, at: at})
}

// phase returns the calls of phase name.
func (tl *timeline) phase(os []outcome, name string) []outcome {
	for i, m := range tl.marks {
		if m.name != name {
			continue
		}
		var end time.Time
		if i+1 < len(tl.marks) {
			end = tl.marks[i+1].at
		}
		return between(os, m.at, end)
	}
	panic("no phase " + name)
}

// between returns the calls started in [from, to); a zero to has no end.
func between(os []outcome, from, to time.Time) []outcome {
	var out []outcome
	for _, o := range os {
		if !o.start.Before(from) && (to.IsZero() || o.start.Before(to)) {
			out = append(out, o)
		}
	}
	return out
}

// failures returns the calls that failed.
func failures(os []outcome) []outcome {
	var out []outcome
	for _, o := range os {
		if o.err != nil {
			out = append(out, o)
		}
	}
	return out
}

// figures summarises calls: counts, failures by kind, latency, and the
// successes by node.
type figures struct {
	calls, failed, unavailable, retried int
	p50, p99, max                       time.Duration
	byNode                              map[string]int
}

func summarise(c *cluster, os []outcome) figures {
	f := figures{calls: len(os), byNode: make(map[string]int)}
	lat := make([]time.Duration, 0, len(os))
	for _, o := range os {
		lat = append(lat, o.at.Sub(o.start))
		if o.attempts > 1 {
			f.retried++
		}
		switch {
		case o.err == nil:
			f.byNode[c.nameOf(o.addr)]++
		case errors.Is(o.err, clientmanager.ErrServiceUnavailable):
			f.failed++
			f.unavailable++
		default:
			f.failed++
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		f.p50 = lat[len(lat)/2]
		f.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
		f.max = lat[len(lat)-1]
	}
	return f
}

// report logs one line of figures per phase of tl, under title.
func (tl *timeline) report(t *testing.T, c *cluster, title string, os []outcome) map[string]figures {
	t.Helper()
	out := make(map[string]figures, len(tl.marks))
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%-28s %12s %6s %6s %6s %6s %9s %9s %9s  %s\n", title,
		"phase", "from", "calls", "failed", "unavl", "retry", "p50", "p99", "max", "answered by")
	for _, m := range tl.marks {
		f := summarise(c, tl.phase(os, m.name))
		out[m.name] = f
		var by []string
		for _, n := range slices.Sorted(maps.Keys(f.byNode)) {
			by = append(by, fmt.Sprintf("%s:%d", n, f.byNode[n]))
		}
		fmt.Fprintf(&b, "%-28s %12s %6d %6d %6d %6d %9s %9s %9s  %s\n", m.name, m.at.Format("15:04:05.000"),
			f.calls, f.failed, f.unavailable,
			f.retried, round(f.p50), round(f.p99), round(f.max), strings.Join(by, " "))
	}
	t.Log(b.String())
	return out
}

// round rounds d for a table: to 10 µs under 10 ms, else to 1 ms.
func round(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// logFailures logs at most n failed calls, for a failing assertion.
func logFailures(t *testing.T, c *cluster, os []outcome, n int) {
	t.Helper()
	for i, o := range failures(os) {
		if i == n {
			break
		}
		t.Logf("failed call started %s, %s, %d attempts, last on %s: %v", o.start.Format("15:04:05.000"),
			round(o.at.Sub(o.start)), o.attempts, c.nameOf(o.addr), o.err)
	}
}
