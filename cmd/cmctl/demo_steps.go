package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
)

// demo plays the timeline on a started cluster.
type demo struct {
	cl      *cluster
	con     *console
	cfg     demoConfig
	results []stepResult
}

// stepResult is one step's line of the summary.
type stepResult struct {
	title     string
	detected  string
	recovered string
	calls     callStats // the calls to the query nodes during the step
	expect    string    // what must hold
	ok        bool
	note      string
}

// step is one fault of the timeline; n is its number.
type step func(ctx context.Context, n int) (stepResult, error)

func (d *demo) play(ctx context.Context) error {
	if err := d.warmUp(ctx); err != nil {
		return err
	}
	if d.cfg.Faults {
		steps := []step{d.killNode, d.freezeNode, d.allDown, d.backUp, d.failover, d.etcdOutage, d.rollingRestart}
		for i, s := range steps {
			r, err := s(ctx, i+1)
			if err != nil {
				d.printSummary()
				return fmt.Errorf("step %d: %w", i+1, err)
			}
			d.results = append(d.results, r)
			d.printVerdict(r)
		}
		d.printSummary()
	}
	if d.cfg.Duration > 0 {
		return d.steady(ctx, d.cfg.Duration)
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// warmUp lets the load run and shows how it spreads.
func (d *demo) warmUp(ctx context.Context) error {
	t0 := time.Now()
	if err := sleep(ctx, d.cfg.pace(2*time.Second)); err != nil {
		return err
	}
	w := d.cl.load.window(nodeRole, t0, time.Now())
	d.con.printf("== steady: %d calls to %s in %s, %d failed, p50 %s, p99 %s; served by %s",
		w.n, nodeRole, fmtDur(time.Since(t0)), w.failed, fmtDur(w.p50), fmtDur(w.p99), d.served(w))
	return nil
}

// served lists how many calls of w each node served, by name.
func (d *demo) served(w callStats) string {
	ids := sortedKeys(w.byNode)
	names := make(map[int64]string, len(ids))
	count := make(map[string]int)
	for _, id := range ids {
		names[id] = d.cl.nameOf(id)
		count[names[id]]++
	}
	var parts []string
	for _, id := range ids {
		name := names[id]
		if count[name] > 1 { // an old and a new process of one slot
			name = fmt.Sprintf("%s (node %d)", name, id)
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, w.byNode[id]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[int64]int) []int64 {
	ks := make([]int64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// nodeID returns the ServerID of p's node as the manager sees it.
func (d *demo) nodeID(p *proc) int64 {
	n, _ := d.cl.statusAt(nodeRole, p.address(), 0)
	return n.NodeID
}

// killNode kills a query node with SIGKILL, restarts it on the same
// address and waits for its old session to expire.
func (d *demo) killNode(ctx context.Context, n int) (stepResult, error) {
	v := 1 % len(d.cl.nodes)
	p := d.cl.nodes[v]
	id, addr := d.nodeID(p), p.address()
	d.con.printf("== %d. kill -9 %s (node %d, pid %d): a crash, no goodbye", n, p.name, id, p.pid())
	t0 := time.Now()
	p.kill()
	tDet, err := until(ctx, d.cfg.StepTimeout, func() bool {
		s, ok := d.cl.statusOf(id)
		return !ok || s.State != clientmanager.NodeOnline
	})
	if err != nil {
		return stepResult{}, fmt.Errorf("node %d still online after the kill: %w", id, err)
	}
	s, _ := d.cl.statusOf(id)
	d.con.at(t0, tDet, "node %d %s for the client manager: %s", id, s.State, orDash(s.LastError))
	if err := sleep(ctx, d.cfg.pace(time.Second)); err != nil {
		return stepResult{}, err
	}
	w := d.cl.load.window(nodeRole, t0, time.Now())
	d.con.at(t0, time.Now(), "%d calls since the kill, %d failed (p99 %s): the others served them; served by %s",
		w.n, w.failed, fmtDur(w.p99), d.served(w))

	tRe := time.Now()
	np, err := d.cl.startNode(ctx, v, addr)
	where := "on the same address " + addr
	if err != nil { // the port was taken meanwhile
		if np, err = d.cl.startNode(ctx, v, "127.0.0.1:0"); err != nil {
			return stepResult{}, err
		}
		where = "on a new address " + np.address() + " (" + addr + " was taken)"
	}
	newID, tOn, err := d.cl.waitOnline(ctx, np, id)
	if err != nil {
		return stepResult{}, err
	}
	d.con.at(t0, tOn, "%s restarted %s: node %d online %s after its start", np.name, where, newID, fmtDur(tOn.Sub(tRe)))
	if s, ok := d.cl.statusOf(id); ok {
		d.con.at(t0, time.Now(), "old node %d: %s (%s)", id, s.State, orDash(s.LastError))
	}

	key := d.cl.sessionKey(nodeRole, id)
	tExp, err := until(ctx, d.cfg.TTL+d.cfg.StepTimeout, func() bool {
		resp, err := d.cl.cli.Get(ctx, key, clientv3.WithCountOnly())
		return err == nil && resp.Count == 0
	})
	if err != nil {
		return stepResult{}, fmt.Errorf("node %d's session did not expire: %w", id, err)
	}
	how := fmt.Sprintf("expired with its lease (TTL %s)", d.cfg.TTL)
	if tExp.Sub(t0) < d.cfg.TTL*3/4 {
		how = "revoked by the new process at its address, which replaces a stale record of an earlier run"
	}
	d.con.at(t0, tExp, "node %d's session gone from etcd: %s; every watcher now knows", id, how)
	if err := sleep(ctx, d.cfg.pace(500*time.Millisecond)); err != nil {
		return stepResult{}, err
	}
	w = d.cl.load.window(nodeRole, t0, time.Now())
	return stepResult{
		title:     "kill -9 " + p.name,
		detected:  "suspect in " + fmtDur(tDet.Sub(t0)),
		recovered: "restarted, online in " + fmtDur(tOn.Sub(tRe)),
		calls:     w,
		expect:    "no call fails",
		ok:        w.failed == 0,
		note:      "old session gone at " + fmtDur(tExp.Sub(t0)),
	}, nil
}

// freezeNode stops a query node with SIGSTOP for half the TTL, then
// resumes it with SIGCONT, and follows its circuit breaker.
func (d *demo) freezeNode(ctx context.Context, n int) (stepResult, error) {
	p := d.cl.nodes[len(d.cl.nodes)-1]
	id := d.nodeID(p)
	freeze := d.cfg.TTL / 2 // its lease must outlive the freeze
	d.con.printf("== %d. SIGSTOP %s (node %d) for %s: frozen, its connection stays open, calls to it hang",
		n, p.name, id, fmtDur(freeze))
	brk := func() breaker.State {
		s, _ := d.cl.statusOf(id)
		return s.Breaker
	}
	t0 := time.Now()
	p.freeze()
	tOpen, err := until(ctx, freeze, func() bool { return brk() == breaker.StateOpen })
	detected := "breaker not open within the freeze"
	if err == nil {
		s, _ := d.cl.statusOf(id)
		d.con.at(t0, tOpen, "node %d's circuit breaker open after %d failures in a row: %s",
			id, s.ConsecutiveFailures, orDash(truncate(s.LastFailureError, 80)))
		detected = "breaker open in " + fmtDur(tOpen.Sub(t0))
	} else if ctx.Err() != nil {
		return stepResult{}, ctx.Err()
	}
	if err := sleep(ctx, time.Until(t0.Add(freeze))); err != nil {
		return stepResult{}, err
	}
	t1 := time.Now()
	if !tOpen.IsZero() {
		w := d.cl.load.window(nodeRole, tOpen, t1)
		d.con.at(t0, t1, "while open: %d calls, %d failed; served by %s", w.n, w.failed, d.served(w))
	}
	p.thaw()
	d.con.at(t0, t1, "SIGCONT %s", p.name)
	var tHalf time.Time
	tClosed, err := until(ctx, d.cfg.StepTimeout, func() bool {
		b := brk()
		if b == breaker.StateHalfOpen && tHalf.IsZero() {
			tHalf = time.Now()
		}
		return b == breaker.StateClosed
	})
	if err != nil {
		return stepResult{}, fmt.Errorf("node %d's breaker did not close after SIGCONT: %w", id, err)
	}
	if !tHalf.IsZero() {
		d.con.at(t0, tHalf, "breaker half-open: probe calls let through")
	}
	d.con.at(t0, tClosed, "breaker closed: node %d back in rotation", id)
	if err := sleep(ctx, d.cfg.pace(500*time.Millisecond)); err != nil {
		return stepResult{}, err
	}
	w := d.cl.load.window(nodeRole, t0, time.Now())
	d.con.at(t0, time.Now(), "%d calls since the freeze, %d failed; p99 %s, max %s (a hung attempt is cut at its share of the deadline, then retried elsewhere)",
		w.n, w.failed, fmtDur(w.p99), fmtDur(w.max))
	return stepResult{
		title:     "SIGSTOP " + p.name + " " + fmtDur(freeze),
		detected:  detected,
		recovered: "closed " + fmtDur(tClosed.Sub(t1)) + " after SIGCONT",
		calls:     w,
		expect:    "no call fails",
		ok:        w.failed == 0,
		note:      "p99 " + fmtDur(w.p99) + ": hung attempts cut",
	}, nil
}

// allDown stops every query node and shows the calls failing fast.
func (d *demo) allDown(ctx context.Context, n int) (stepResult, error) {
	d.con.printf("== %d. all %d query nodes stop (SIGTERM): no node left to call", n, len(d.cl.nodes))
	t0 := time.Now()
	for _, p := range d.cl.nodes {
		p.terminate()
	}
	tNone, err := until(ctx, d.cfg.StepTimeout, func() bool { return len(d.cl.mgr.GetClients(nodeRole)) == 0 })
	if err != nil {
		return stepResult{}, fmt.Errorf("query nodes still available: %w", err)
	}
	d.con.at(t0, tNone, "no %s available for the client manager (each marked itself Stopping in etcd)", nodeRole)
	if err := sleep(ctx, d.cfg.pace(time.Second)); err != nil {
		return stepResult{}, err
	}
	tEnd := time.Now()
	for _, p := range d.cl.nodes {
		if err := p.stop(); err != nil {
			return stepResult{}, err
		}
	}
	before, after := d.cl.load.window(nodeRole, t0, tNone), d.cl.load.window(nodeRole, tNone, tEnd)
	d.con.at(t0, tNone, "%s before, %d failed", plural(before.n, "call"), before.failed)
	d.con.at(t0, tEnd, "%s after, %d failed at once: p50 %s, p99 %s, max %s — no dial, no etcd round trip",
		plural(after.n, "call"), after.failed, fmtDur(after.failP50), fmtDur(after.failP99), fmtDur(after.failMax))
	typed := false
	if err := after.firstErr; err != nil {
		var ne *clientmanager.NodeError
		typed = errors.Is(err, clientmanager.ErrServiceUnavailable) && errors.As(err, &ne)
		d.con.printf("             the error: %T %q; errors.Is(err, clientmanager.ErrServiceUnavailable) = %t; status.Code = %s",
			err, err.Error(), errors.Is(err, clientmanager.ErrServiceUnavailable), status.Code(err))
	}
	fast := after.n > 0 && after.failed == after.n && after.failP50 < time.Millisecond && typed
	return stepResult{
		title:     fmt.Sprintf("all %d query nodes down", len(d.cl.nodes)),
		detected:  "none available in " + fmtDur(tNone.Sub(t0)),
		recovered: "-",
		calls:     d.cl.load.window(nodeRole, t0, tEnd),
		expect:    "fail fast, typed error",
		ok:        fast,
		note:      fmt.Sprintf("failed in p50 %s, max %s", fmtDur(after.failP50), fmtDur(after.failMax)),
	}, nil
}

// backUp starts the query nodes again.
func (d *demo) backUp(ctx context.Context, n int) (stepResult, error) {
	d.con.printf("== %d. %d new query nodes start", n, len(d.cl.nodes))
	t0 := time.Now()
	if err := d.cl.startNodes(ctx, nil); err != nil {
		return stepResult{}, err
	}
	tAll := time.Now()
	w := d.cl.load.window(nodeRole, t0, tAll.Add(time.Second))
	if w.firstOK.IsZero() {
		if _, err := until(ctx, d.cfg.StepTimeout, func() bool {
			w = d.cl.load.window(nodeRole, t0, time.Now())
			return !w.firstOK.IsZero()
		}); err != nil {
			return stepResult{}, fmt.Errorf("no call served after the nodes came back: %w", err)
		}
	}
	first := w.firstOK
	var ids []string
	for _, p := range d.cl.nodes {
		ids = append(ids, fmt.Sprintf("%s node %d", p.name, d.nodeID(p)))
	}
	d.con.at(t0, first, "first call served")
	d.con.at(t0, tAll, "all online: %s", strings.Join(ids, ", "))
	if err := sleep(ctx, d.cfg.pace(500*time.Millisecond)); err != nil {
		return stepResult{}, err
	}
	before, after := d.cl.load.window(nodeRole, t0, first), d.cl.load.window(nodeRole, first, time.Now())
	d.con.at(t0, time.Now(), "%d calls failed fast before the first node was online; after it %d calls, %d failed; served by %s",
		before.failed, after.n, after.failed, d.served(after))
	return stepResult{
		title:     "query nodes back",
		detected:  "first call served in " + fmtDur(first.Sub(t0)),
		recovered: "all online in " + fmtDur(tAll.Sub(t0)),
		calls:     d.cl.load.window(nodeRole, t0, time.Now()),
		expect:    "none fails once one is up",
		ok:        after.failed == 0,
		note:      fmt.Sprintf("%d failed fast before", before.failed),
	}, nil
}

// failover stops the active coordinator; its standby takes over.
func (d *demo) failover(ctx context.Context, n int) (stepResult, error) {
	a, s := d.cl.active(), d.cl.standby()
	if a == nil || s == nil {
		return stepResult{}, errors.New("no active and standby coordinators")
	}
	d.con.printf("== %d. stop the active %s (%s, SIGTERM): its standby %s takes over", n, coordRole, a.name, s.name)
	t0 := time.Now()
	a.terminate()
	tTake, err := s.waitState(ctx, "Healthy", t0)
	if err != nil {
		return stepResult{}, err
	}
	d.con.at(t0, tTake, "%s Healthy: the active %s", s.name, coordRole)
	if err := d.cl.waitCoordinatorOnline(ctx, t0); err != nil {
		return stepResult{}, err
	}
	if err := a.stop(); err != nil {
		return stepResult{}, err
	}
	d.cl.coords = slices.DeleteFunc(d.cl.coords, func(p *proc) bool { return p == a })
	np, err := d.cl.startCoordinator(ctx)
	if err != nil {
		return stepResult{}, err
	}
	d.con.at(t0, time.Now(), "%s started: the new standby", np.name)
	if err := sleep(ctx, d.cfg.pace(500*time.Millisecond)); err != nil {
		return stepResult{}, err
	}
	w, rc := d.cl.load.window(nodeRole, t0, time.Now()), d.cl.load.window(coordRole, t0, time.Now())
	gap := "none"
	if rc.failed > 0 {
		gap = fmt.Sprintf("%d of %d failed in the %s handover", rc.failed, rc.n, fmtDur(rc.lastFail.Sub(rc.firstFail)))
	}
	d.con.at(t0, time.Now(), "calls to %s: %s (one active at a time: none between the stop and the takeover); to %s: %d, %d failed",
		coordRole, gap, nodeRole, w.n, w.failed)
	return stepResult{
		title:     "stop active " + a.name,
		detected:  "standby active in " + fmtDur(tTake.Sub(t0)),
		recovered: "new standby " + np.name,
		calls:     w,
		expect:    "no querynode call fails",
		ok:        w.failed == 0,
		note:      coordRole + ": " + gap,
	}, nil
}

// etcdOutage stops etcd for twice the TTL.
func (d *demo) etcdOutage(ctx context.Context, n int) (stepResult, error) {
	outage := 2 * d.cfg.TTL
	if d.cl.etcd.external {
		d.con.printf("== %d. etcd outage: skipped, etcd is not the demo's own (-%s)", n, flagEtcdEndpoints)
		return stepResult{title: "etcd down " + fmtDur(outage), detected: "skipped", recovered: "-", expect: "-", ok: true,
			note: "etcd is external"}, nil
	}
	a := d.cl.active()
	d.con.printf("== %d. etcd stops for %s (2 × TTL): no keepalive, no watch, no session can be read", n, fmtDur(outage))
	t0 := time.Now()
	d.cl.etcd.stop()
	d.con.at(t0, time.Now(), "etcd stopped")
	detected := "-"
	if a != nil {
		octx, cancel := context.WithTimeout(ctx, outage)
		tFence, err := a.waitState(octx, "StandBy", t0)
		cancel()
		if err == nil {
			d.con.at(t0, tFence, "%s fenced itself (StandBy) before its lease could expire: never two active", a.name)
			detected = a.name + " fenced in " + fmtDur(tFence.Sub(t0))
		} else if ctx.Err() != nil {
			return stepResult{}, ctx.Err()
		}
	}
	if err := sleep(ctx, time.Until(t0.Add(outage))); err != nil {
		return stepResult{}, err
	}
	t1 := time.Now()
	w := d.cl.load.window(nodeRole, t0, t1)
	d.con.at(t0, t1, "during the outage: %d calls to %s, %d failed; served by %s", w.n, nodeRole, w.failed, d.served(w))
	if err := d.cl.etcd.start(); err != nil {
		return stepResult{}, err
	}
	d.con.at(t0, time.Now(), "etcd started again (same data)")
	var tBack time.Time
	_, err := until(ctx, d.cfg.StepTimeout, func() bool {
		for _, c := range d.cl.coords {
			if ss := c.statesSince(t1); len(ss) > 0 && ss[len(ss)-1].to == "Healthy" {
				tBack = ss[len(ss)-1].at
				return true
			}
			if a != nil && c == a && c.state() == "Healthy" && len(c.statesSince(t0)) == 0 {
				tBack = t1 // never fenced
				return true
			}
		}
		return false
	})
	if err != nil {
		return stepResult{}, fmt.Errorf("no %s active after etcd came back: %w", coordRole, err)
	}
	active := d.cl.active()
	d.con.at(t0, tBack, "%s active again", active.name)
	if err := d.cl.waitCoordinatorOnline(ctx, time.Time{}); err != nil {
		return stepResult{}, err
	}
	if err := sleep(ctx, d.cfg.pace(500*time.Millisecond)); err != nil {
		return stepResult{}, err
	}
	var changed []string
	for _, p := range d.cl.nodes {
		for _, s := range p.statesSince(t0) {
			changed = append(changed, p.name+" "+s.to)
		}
	}
	w = d.cl.load.window(nodeRole, t0, time.Now())
	rc := d.cl.load.window(coordRole, t0, time.Now())
	if len(changed) == 0 {
		d.con.at(t0, time.Now(), "the query nodes stayed Healthy throughout; %d of %d calls to %s failed while no process was active",
			rc.failed, rc.n, coordRole)
	} else {
		d.con.at(t0, time.Now(), "query node state changes: %s", strings.Join(changed, ", "))
	}
	return stepResult{
		title:     "etcd down " + fmtDur(outage),
		detected:  detected,
		recovered: coordRole + " active " + fmtDur(tBack.Sub(t1)) + " after etcd",
		calls:     w,
		expect:    "no querynode call fails",
		ok:        w.failed == 0 && len(changed) == 0,
		note:      fmt.Sprintf("%s: %d of %d failed while fenced", coordRole, rc.failed, rc.n),
	}, nil
}

// rollingRestart replaces each query node in turn.
func (d *demo) rollingRestart(ctx context.Context, n int) (stepResult, error) {
	d.con.printf("== %d. rolling restart: each query node in turn stops (SIGTERM) and a new process replaces it", n)
	t0 := time.Now()
	var slowest time.Duration
	for i, p := range d.cl.nodes {
		id := d.nodeID(p)
		ts := time.Now()
		p.terminate()
		tOut, err := until(ctx, d.cfg.StepTimeout, func() bool {
			s, ok := d.cl.statusOf(id)
			return !ok || s.State != clientmanager.NodeOnline
		})
		if err != nil {
			return stepResult{}, fmt.Errorf("node %d still in rotation: %w", id, err)
		}
		slowest = max(slowest, tOut.Sub(ts))
		if err := p.stop(); err != nil {
			return stepResult{}, err
		}
		tStopped := time.Now()
		np, err := d.cl.startNode(ctx, i, "127.0.0.1:0")
		if err != nil {
			return stepResult{}, err
		}
		newID, tOn, err := d.cl.waitOnline(ctx, np, id)
		if err != nil {
			return stepResult{}, err
		}
		d.con.at(t0, tOn, "%s: out of rotation in %s, stopped in %s; node %d online %s after its start",
			p.name, fmtDur(tOut.Sub(ts)), fmtDur(tStopped.Sub(ts)), newID, fmtDur(tOn.Sub(tStopped)))
	}
	tEnd := time.Now()
	if err := sleep(ctx, d.cfg.pace(500*time.Millisecond)); err != nil {
		return stepResult{}, err
	}
	w := d.cl.load.window(nodeRole, t0, time.Now())
	d.con.at(t0, time.Now(), "%d calls during the restart, %d failed; served by %s", w.n, w.failed, d.served(w))
	return stepResult{
		title:     "rolling restart",
		detected:  "out of rotation in ≤ " + fmtDur(slowest),
		recovered: "all replaced in " + fmtDur(tEnd.Sub(t0)),
		calls:     w,
		expect:    "no call fails",
		ok:        w.failed == 0,
	}, nil
}

// steady runs the load for dur. On a terminal it redraws a table of the
// nodes every second; otherwise it prints a line a second.
func (d *demo) steady(ctx context.Context, dur time.Duration) error {
	d.con.printf("== the load runs for %s (interrupt to stop)", fmtDur(dur))
	end := time.Now().Add(dur)
	drawn := 0 // lines of the live table on the screen
	for last := time.Now(); time.Now().Before(end); {
		if err := sleep(ctx, min(time.Second, time.Until(end))); err != nil {
			return nil // interrupted: the normal end
		}
		now := time.Now()
		w, rc := d.cl.load.window(nodeRole, last, now), d.cl.load.window(coordRole, last, now)
		if d.con.tty {
			drawn = d.con.redraw(drawn, liveTable(d.cl.mgr.Status(), []callStats{w, rc}, now.Sub(last), d.cl.nameOf))
		} else {
			d.con.printf("  %s  %s: %d calls, %d failed, p99 %s; served by %s · %s: %d calls, %d failed",
				now.Format("15:04:05"), nodeRole, w.n, w.failed, fmtDur(w.p99), d.served(w), coordRole, rc.n, rc.failed)
		}
		last = now
	}
	return nil
}

// liveTable renders the nodes of st with the calls of the last period
// that each served: role, node, state, breaker, in-flight, calls/s, p99.
func liveTable(st []clientmanager.NodeStatus, windows []callStats, period time.Duration, name func(int64) string) string {
	byNode := make(map[int64][]time.Duration)
	failed := make(map[string]int)
	for _, w := range windows {
		for _, c := range w.calls {
			if c.err != nil {
				failed[c.role]++
				continue
			}
			byNode[c.node] = append(byNode[c.node], c.took)
		}
	}
	var b strings.Builder
	t := newTable(&b, "  ", "ROLE", "NODE", "ID", "STATE", "BREAKER", "IN-FLIGHT", "CALLS/S", "P99", "LAST ERROR")
	for _, n := range st {
		lat := byNode[n.NodeID]
		_, p99, _ := quantiles(lat)
		rate := float64(len(lat)) / max(period.Seconds(), 1e-3)
		p := "-"
		if len(lat) > 0 {
			p = fmtDur(p99)
		}
		lastErr := n.LastError
		if lastErr == "" {
			lastErr = n.LastFailureError
		}
		t.row(n.Role, name(n.NodeID), strconv.FormatInt(n.NodeID, 10), n.State.String(), n.Breaker.String(),
			strconv.FormatInt(n.InFlight, 10), strconv.FormatFloat(rate, 'f', 0, 64), p, orDash(truncate(lastErr, 40)))
	}
	_ = t.flush()
	fmt.Fprintf(&b, "  %s  failed calls in the last %s: %s %d, %s %d\n", time.Now().Format("15:04:05"), fmtDur(period),
		nodeRole, failed[nodeRole], coordRole, failed[coordRole])
	return b.String()
}

// printVerdict prints a step's figures.
func (d *demo) printVerdict(r stepResult) {
	verdict := "as expected"
	if !r.ok {
		verdict = "NOT as expected"
	}
	d.con.printf("  → %s; %s; %d calls to %s, %d failed: %s (%s)", r.detected, r.recovered, r.calls.n, nodeRole, r.calls.failed, verdict, r.expect)
}

// printSummary prints the table of the steps played.
func (d *demo) printSummary() {
	if len(d.results) == 0 {
		return
	}
	_ = d.con.write(func(w io.Writer) error {
		fmt.Fprintf(w, "== summary (calls: the load's calls to %s during the step)\n", nodeRole)
		t := newTable(w, "  ", "#", "FAULT", "DETECTED", "RECOVERED", "CALLS", "FAILED", "EXPECTED", "OK", "NOTE")
		for i, r := range d.results {
			ok := "yes"
			if !r.ok {
				ok = "NO"
			}
			t.row(fmt.Sprint(i+1), r.title, r.detected, r.recovered, fmt.Sprint(r.calls.n), fmt.Sprint(r.calls.failed),
				r.expect, ok, orDash(r.note))
		}
		return t.flush()
	})
}

// plural prints n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// fmtDur prints a duration to about three significant digits: 41µs,
// 2.3ms, 412ms, 1.23s.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
