package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/examples"
)

// maxLoadInFlight bounds the calls of the load in flight at once; a tick
// that finds them all busy is counted as a call that failed.
const maxLoadInFlight = 512

// load calls roles at a steady rate through the demo's client manager and
// records every call: an open loop, so that a hung node does not slow it.
type load struct {
	mgr      *clientmanager.Manager
	deadline time.Duration

	mu    sync.Mutex
	calls []call

	sem    chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// call is one call's outcome.
type call struct {
	role  string
	start time.Time
	took  time.Duration
	node  int64 // the node that answered, or the last one tried; 0: none
	err   error
}

func newLoad(mgr *clientmanager.Manager, deadline time.Duration) *load {
	return &load{mgr: mgr, deadline: deadline, sem: make(chan struct{}, maxLoadInFlight)}
}

// start calls each role of rates (calls per second) until stop.
func (l *load) start(rates map[string]int) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for role, rate := range rates {
		l.wg.Go(func() { l.loop(ctx, role, rate) })
	}
}

// stop ends the load and waits for the calls in flight.
func (l *load) stop() {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
}

func (l *load) loop(ctx context.Context, role string, rate int) {
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case l.sem <- struct{}{}:
			l.wg.Go(func() {
				defer func() { <-l.sem }()
				l.call(ctx, role)
			})
		default:
			l.record(call{role: role, start: time.Now(), err: errLoadSaturated})
		}
	}
}

// errLoadSaturated is recorded for a tick that found maxLoadInFlight calls
// in flight.
var errLoadSaturated = errors.New("the demo's load has too many calls in flight")

// call makes one Echo call to role, retried on another node if need be:
// Echo is idempotent.
func (l *load) call(ctx context.Context, role string) {
	cctx, cancel := context.WithTimeout(ctx, l.deadline)
	defer cancel()
	var node int64
	start := time.Now()
	err := l.mgr.Invoke(cctx, role, func(ctx context.Context, c *clientmanager.Client) error {
		node = c.NodeID()
		_, err := examples.Echo(ctx, c.Conn(), "cmctl demo")
		return err
	}, clientmanager.Idempotent())
	took := time.Since(start)
	if err != nil && ctx.Err() != nil {
		return // the load stopped: not an outcome
	}
	l.record(call{role: role, start: start, took: took, node: node, err: err})
}

func (l *load) record(c call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

// window returns the calls to role that started in [from, to).
func (l *load) window(role string, from, to time.Time) callStats {
	l.mu.Lock()
	var cs []call
	for _, c := range l.calls {
		if c.role == role && !c.start.Before(from) && c.start.Before(to) {
			cs = append(cs, c)
		}
	}
	l.mu.Unlock()
	return newCallStats(cs)
}

// callStats summarises calls.
type callStats struct {
	calls  []call
	n      int
	failed int
	// Latencies of every call and of the failed ones.
	p50, p99, max             time.Duration
	failP50, failP99, failMax time.Duration
	firstErr                  error
	firstFail                 time.Time // start of the first failed call
	lastFail                  time.Time // end of the last failed call
	firstOK                   time.Time // start of the first successful call
	byNode                    map[int64]int
}

func newCallStats(cs []call) callStats {
	s := callStats{calls: cs, n: len(cs), byNode: make(map[int64]int)}
	var all, failed []time.Duration
	for _, c := range cs {
		all = append(all, c.took)
		if c.err != nil {
			s.failed++
			failed = append(failed, c.took)
			if s.firstErr == nil {
				s.firstErr, s.firstFail = c.err, c.start
			}
			if end := c.start.Add(c.took); end.After(s.lastFail) {
				s.lastFail = end
			}
			continue
		}
		s.byNode[c.node]++
		if s.firstOK.IsZero() || c.start.Before(s.firstOK) {
			s.firstOK = c.start
		}
	}
	s.p50, s.p99, s.max = quantiles(all)
	s.failP50, s.failP99, s.failMax = quantiles(failed)
	return s
}

// quantiles returns the median, the 99th percentile and the maximum.
func quantiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return at(0.5), at(0.99), ds[len(ds)-1]
}
