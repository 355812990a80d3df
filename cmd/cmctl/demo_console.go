package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// console serialises the demo's output: lines from the scenario and from
// the goroutines that follow the components, each event stamped with the
// time since the demo began.
type console struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	names map[string]string // address → component name
}

func newConsole(w io.Writer) *console {
	return &console{w: w, start: time.Now(), names: make(map[string]string)}
}

// since returns the time since the demo began.
func (c *console) since() time.Duration { return time.Since(c.start) }

// event prints one line of the event stream: time, component, kind, text.
func (c *console) event(name, kind, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "%8.3fs  %-12s %-8s %s\n", c.since().Seconds(), name, kind, fmt.Sprintf(format, args...))
}

// printf prints one line of the scenario.
func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, format+"\n", args...)
}

// write lets f write several lines at once.
func (c *console) write(f func(w io.Writer) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f(c.w)
}

// setName names the component serving at addr.
func (c *console) setName(addr, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names[addr] = name
}

// name returns the name of the component serving at addr, or addr.
func (c *console) name(addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.names[addr]; ok {
		return n
	}
	return addr
}

// tracker records the last event of each node seen by the coordinator —
// its client events ("online", "offline") and session events ("add",
// "update", "del") — so that the scenario can wait for one and know when
// it came.
type tracker struct {
	mu      sync.Mutex
	last    map[trackKey]trackedEvent
	changed chan struct{} // closed and replaced on every event
}

// The streams of events a tracker follows.
const (
	streamClient  = "client"  // the coordinator's WatchClients
	streamSession = "session" // the session watchers
)

// trackKey is a node in one stream of events.
type trackKey struct {
	stream string
	id     int64
}

type trackedEvent struct {
	what string
	at   time.Time
}

func newTracker() *tracker {
	return &tracker{last: make(map[trackKey]trackedEvent), changed: make(chan struct{})}
}

func (t *tracker) set(stream string, id int64, what string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last[trackKey{stream, id}] = trackedEvent{what, at}
	close(t.changed)
	t.changed = make(chan struct{})
}

// wait returns when the last event of node id in stream became what, once
// it is; or ctx's error.
func (t *tracker) wait(ctx context.Context, stream string, id int64, what string) (time.Time, error) {
	for {
		t.mu.Lock()
		ev, changed := t.last[trackKey{stream, id}], t.changed
		t.mu.Unlock()
		if ev.what == what {
			return ev.at, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("node %d: no %s %s event: %w", id, stream, what, ctx.Err())
		}
	}
}

// seen reports whether node id has had an event in stream.
func (t *tracker) seen(stream string, id int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.last[trackKey{stream, id}]
	return ok
}
