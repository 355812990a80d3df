package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/clientmanager"
)

// callTimeout bounds one call of the scenario, retries included.
const callTimeout = 2 * time.Second

// demo plays the scenario on a started cluster.
type demo struct {
	cl  *cluster
	con *console
	cfg demoConfig
}

func (d *demo) play(ctx context.Context) error {
	steps := []func(context.Context) error{d.spread, d.stopOne, d.join, d.status}
	if d.cfg.Duration > 0 {
		steps = append(steps, d.loop)
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// spread makes cfg.Calls calls and shows that every node served some.
func (d *demo) spread(ctx context.Context) error {
	d.con.printf("== 1. all %d query nodes online: %d health checks through Invoke(%q), round robin",
		len(d.cl.nodes), d.cfg.Calls, nodeRole)
	return d.calls(ctx, d.cfg.Calls)
}

// stopOne stops a node gracefully and measures until the coordinator
// sees it offline.
func (d *demo) stopOne(ctx context.Context) error {
	if len(d.cl.nodes) == 0 {
		return errNoNode
	}
	n := d.cl.nodes[(len(d.cl.nodes)-1)/2]
	id := n.runner.Session().ServerID
	d.con.printf("== 2. %s (node %d) stops gracefully: its context is cancelled", n.name, id)
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StepTimeout)
	defer cancel()
	start := time.Now()
	n.cancel()
	offline, err := d.cl.events.wait(ctx, streamClient, id, "offline")
	if err != nil {
		return err
	}
	if err := n.stop(); err != nil {
		return err
	}
	stopped := time.Since(start)
	deleted, err := d.cl.events.wait(ctx, streamSession, id, "del")
	if err != nil {
		return err
	}
	d.con.printf("  %s offline for the coordinator %s after the stop began; Stopped after %s; session gone after %s",
		n.name, offline.Sub(start).Round(time.Microsecond), stopped.Round(time.Millisecond),
		deleted.Sub(start).Round(time.Millisecond))
	if d.cl.mgr.IsOnline(id) {
		return fmt.Errorf("node %d is still online after its offline event", id)
	}
	return nil
}

// join starts a new node, measures until the coordinator sees it online,
// and shows that it takes its share of the calls.
func (d *demo) join(ctx context.Context) error {
	d.con.printf("== 3. a new query node joins")
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StepTimeout)
	defer cancel()
	start := time.Now()
	n, err := d.cl.addNode()
	if err != nil {
		return err
	}
	id, at, err := d.cl.waitOnline(ctx, n)
	if err != nil {
		return err
	}
	d.con.printf("  %s (node %d) online for the coordinator %s after it started",
		n.name, id, at.Sub(start).Round(time.Millisecond))
	online := len(d.cl.mgr.GetClients(nodeRole))
	d.con.printf("  %d health checks over the %d online nodes", 2*online, online)
	return d.calls(ctx, 2*online)
}

// status prints the coordinator's Status table.
func (d *demo) status(context.Context) error {
	d.con.printf("== 4. the coordinator's view: Status()")
	st := d.cl.mgr.Status()
	now := time.Now()
	return d.con.write(func(w io.Writer) error { return writeStatus(w, "  ", st, now) })
}

// loop calls a node at once and then every cfg.CallInterval until
// cfg.Duration elapses or ctx ends; a failed call is printed, not fatal.
func (d *demo) loop(ctx context.Context) error {
	d.con.printf("== a call every %s for %s (interrupt to stop early)", d.cfg.CallInterval, d.cfg.Duration)
	deadline := time.Now().Add(d.cfg.Duration)
	end := time.NewTimer(d.cfg.Duration)
	defer end.Stop()
	tick := time.NewTicker(d.cfg.CallInterval)
	defer tick.Stop()
	served := tally{}
	for i := 1; ; i++ {
		if c, err := d.call(ctx, i); err == nil {
			served.add(c, d.con)
		}
		select {
		case <-ctx.Done():
			d.con.printf("  interrupted after %d calls", i)
			d.printServed(served)
			return nil
		case <-end.C:
			d.printServed(served)
			return nil
		case <-tick.C:
			if !time.Now().Before(deadline) {
				d.printServed(served)
				return nil
			}
		}
	}
}

// calls makes n calls one after the other and prints who served them.
func (d *demo) calls(ctx context.Context, n int) error {
	served := tally{}
	for i := 1; i <= n; i++ {
		c, err := d.call(ctx, i)
		if err != nil {
			return err
		}
		served.add(c, d.con)
	}
	d.printServed(served)
	return nil
}

// call makes one health check through Invoke and prints it.
func (d *demo) call(ctx context.Context, i int) (*clientmanager.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var c *clientmanager.Client
	var status healthpb.HealthCheckResponse_ServingStatus
	start := time.Now()
	err := d.cl.mgr.Invoke(ctx, nodeRole, func(ctx context.Context, cc *clientmanager.Client) error {
		c = cc
		resp, err := healthpb.NewHealthClient(cc.Conn()).Check(ctx, &healthpb.HealthCheckRequest{})
		status = resp.GetStatus()
		return err
	}, clientmanager.Idempotent()) // a health check may run twice
	took := time.Since(start).Round(time.Microsecond)
	if err != nil {
		d.con.printf("  call %2d  failed after %s: %v", i, took, err)
		return nil, fmt.Errorf("call %d: %w", i, err)
	}
	d.con.printf("  call %2d  → node %d  %-12s %s  %s", i, c.NodeID(), d.con.name(c.Session().Address), status, took)
	return c, nil
}

// tally counts the calls each node served.
type tally map[int64]*served

type served struct {
	name  string
	calls int
}

func (t tally) add(c *clientmanager.Client, con *console) {
	s, ok := t[c.NodeID()]
	if !ok {
		s = &served{name: con.name(c.Session().Address)}
		t[c.NodeID()] = s
	}
	s.calls++
}

func (d *demo) printServed(t tally) {
	ids := make([]int64, 0, len(t))
	for id := range t {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("node %d (%s) %d", id, t[id].name, t[id].calls))
	}
	d.con.printf("  calls served: %s", strings.Join(parts, ", "))
}
