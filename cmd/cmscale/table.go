package main

import (
	"fmt"
	"io"
	"time"
)

// Targets of issue 15.
const (
	registryTargetNodes = 16_000
	registryTargetTime  = time.Second
	registryTargetAlloc = 200 << 20
	growthSmall         = 2_000
	growthLarge         = 8_000
	growthTarget        = 6.0 // time at growthLarge ≤ growthTarget × time at growthSmall
	reachableTarget     = time.Second
	addedTarget         = 100 * time.Millisecond
	// unreachableSlack is how much later than DialAttempts × DialTimeout
	// the black holes may become unreachable: backoff and polling.
	unreachableSlack = 5 * time.Second
)

// table is the report: one row per figure, with its target and verdict.
type table struct {
	rows []row
}

type row struct {
	what, value, target string
	checked, pass       bool
}

func (t *table) add(what, value string) { t.rows = append(t.rows, row{what: what, value: value}) }

func (t *table) check(what, value, target string, pass bool) {
	t.rows = append(t.rows, row{what: what, value: value, target: target, checked: true, pass: pass})
}

func (t *table) ok() bool {
	for _, r := range t.rows {
		if r.checked && !r.pass {
			return false
		}
	}
	return true
}

func (t *table) print(w io.Writer) {
	fmt.Fprintln(w, "| measurement | result | target | check |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range t.rows {
		verdict := ""
		switch {
		case r.checked && r.pass:
			verdict = "ok"
		case r.checked:
			verdict = "**FAIL**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.what, r.value, r.target, verdict)
	}
}

func (t *table) registry(runs []registryResult) {
	took := map[int]time.Duration{}
	for _, r := range runs {
		took[r.nodes] = r.took
		what := fmt.Sprintf("registry: New → all online, %s nodes (instant dialer, best of %d)", count(r.nodes), r.runs)
		value := fmt.Sprintf("%s, %s allocated", seconds(r.took), mib(r.alloc))
		if r.nodes != registryTargetNodes {
			t.add(what, value)
			continue
		}
		t.check(what, value, fmt.Sprintf("≤ %s, ≤ %s", seconds(registryTargetTime), mib(registryTargetAlloc)),
			r.took <= registryTargetTime && r.alloc <= registryTargetAlloc)
	}
	small, okS := took[growthSmall]
	large, okL := took[growthLarge]
	if okS && okL && small > 0 {
		ratio := float64(large) / float64(small)
		t.check(fmt.Sprintf("registry: time at %s ÷ time at %s nodes", count(growthLarge), count(growthSmall)),
			fmt.Sprintf("%.1f×", ratio), fmt.Sprintf("≤ %.0f× (linear: 4×)", growthTarget), ratio <= growthTarget)
	}
}

func (t *table) dial(r dialResult) {
	t.check(fmt.Sprintf("dial: %s reachable of %s nodes (%d black holes) online", count(r.nodes-r.holes), count(r.nodes), r.holes),
		seconds(r.reachable), "≤ "+seconds(reachableTarget), r.reachable <= reachableTarget)
	t.check("dial: a node added while the black holes are dialed → online", duration(r.added),
		"≤ "+duration(addedTarget), r.added <= addedTarget)
	want := 3 * r.dialTimeout
	t.check("dial: AddDependency → every black hole unreachable", seconds(r.unreachable),
		fmt.Sprintf("3 × DialTimeout = %s (+ %s)", seconds(want), seconds(unreachableSlack)),
		r.unreachable >= want && r.unreachable <= want+unreachableSlack)
}

func (t *table) list(r listResult) {
	n := count(r.sessions)
	t.add(fmt.Sprintf("list: writing %s sessions (reference)", n), seconds(r.put))
	value := fmt.Sprintf("%s, %d Range requests, slowest %s", seconds(r.list), r.listRequests, duration(r.listSlowest))
	if r.listErr != nil {
		value = fmt.Sprintf("failed after %s: %v", seconds(r.list), r.listErr)
	}
	t.check(fmt.Sprintf("list: session.List of %s sessions", n), value,
		"each request < RequestTimeout ("+seconds(r.timeout)+")", r.listErr == nil && r.listSlowest < r.timeout)
	value = fmt.Sprintf("%s, %d Range requests (%d failed), slowest %s", seconds(r.sync), r.syncRequests, r.syncFailed, duration(r.syncSlowest))
	if r.syncErr != nil {
		value = fmt.Sprintf("%v; %d Range requests (%d failed)", r.syncErr, r.syncRequests, r.syncFailed)
	}
	t.check(fmt.Sprintf("list: Watcher initial sync of %s sessions", n), value,
		"no failed request, each < RequestTimeout", r.syncErr == nil && r.syncFailed == 0 && r.syncSlowest < r.timeout)
	if r.syncErr == nil {
		t.add(fmt.Sprintf("list: Watcher heap per session (%s sessions)", n),
			fmt.Sprintf("%.2f KiB; sync %.1f µs per session", float64(r.perSession)/1024, float64(r.sync.Microseconds())/float64(r.sessions)))
	}
}

func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func seconds(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}

// duration is milliseconds below a second, seconds above.
func duration(d time.Duration) string {
	if d >= time.Second {
		return seconds(d)
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func mib(b uint64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
