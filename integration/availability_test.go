//go:build integration

package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
)

// availability records the manager's ClientOnline and ClientOffline
// events of a role, with the time each was read.
type availability struct {
	mu     sync.Mutex
	events []availabilityEvent
}

type availabilityEvent struct {
	at   time.Time
	typ  clientmanager.ClientEventType
	addr string
	id   int64
}

func watchAvailability(t *testing.T, m *clientmanager.Manager, role string) *availability {
	a := &availability{}
	ctx, cancel := context.WithCancel(context.Background())
	ch := m.WatchClients(ctx, role)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			a.mu.Lock()
			a.events = append(a.events, availabilityEvent{at: time.Now(), typ: ev.Type,
				addr: ev.Client.Session().Address, id: ev.Client.NodeID()})
			a.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return a
}

// first returns the time of the first event of typ for addr at or after
// since; ok is false when there is none.
func (a *availability) first(typ clientmanager.ClientEventType, addr string, since time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.events {
		if e.typ == typ && e.addr == addr && !e.at.Before(since) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// count returns the number of events of typ for addr at or after since.
func (a *availability) count(typ clientmanager.ClientEventType, addr string, since time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.events {
		if e.typ == typ && e.addr == addr && !e.at.Before(since) {
			n++
		}
	}
	return n
}

// left returns how long after since the node at addr left the available
// set, waiting for it.
func (c *cluster) left(n *procNode, since time.Time) time.Duration {
	c.t.Helper()
	var at time.Time
	require.Eventually(c.t, func() bool {
		var ok bool
		at, ok = c.events.first(clientmanager.ClientOffline, n.addr, since)
		return ok
	}, procWait, 5*time.Millisecond, "%s leaves the available set", n.name)
	return at.Sub(since)
}

// joined returns how long after since the node at addr joined the
// available set, waiting for it.
func (c *cluster) joined(n *procNode, since time.Time) time.Duration {
	c.t.Helper()
	var at time.Time
	require.Eventually(c.t, func() bool {
		var ok bool
		at, ok = c.events.first(clientmanager.ClientOnline, n.addr, since)
		return ok
	}, procWait, 5*time.Millisecond, "%s joins the available set", n.name)
	return at.Sub(since)
}
