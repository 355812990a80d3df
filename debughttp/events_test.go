package debughttp

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/startup"
)

const defaultTestTimeout = 10 * time.Second

func TestRecorder(t *testing.T) {
	r := newRecorder(4)
	n := func(id int64, st clientmanager.NodeState, b breaker.State) clientmanager.NodeStatus {
		return clientmanager.NodeStatus{NodeID: id, Role: "querynode", State: st, Breaker: b, LastError: "e" + st.String(),
			LastFailureError: "f" + b.String()}
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r.observe(at(0), []clientmanager.NodeStatus{n(1, clientmanager.NodeOnline, breaker.StateClosed)})
	r.observe(at(1), []clientmanager.NodeStatus{n(1, clientmanager.NodeOnline, breaker.StateClosed)}) // nothing changed
	r.observe(at(2), []clientmanager.NodeStatus{n(1, clientmanager.NodeSuspect, breaker.StateOpen), n(2, clientmanager.NodeConnecting, breaker.StateClosed)})
	r.observe(at(3), nil)
	require.Equal(t, []Event{
		{Time: at(3), Role: "querynode", NodeID: 2, Kind: "node", From: "connecting", To: "removed"},
		{Time: at(3), Role: "querynode", NodeID: 1, Kind: "node", From: "suspect", To: "removed"},
		{Time: at(2), Role: "querynode", NodeID: 2, Kind: "node", To: "connecting", Detail: "econnecting"},
		{Time: at(2), Role: "querynode", NodeID: 1, Kind: "breaker", From: "closed", To: "open", Detail: "fopen"},
	}, r.events(), "newest first, at most 4")

	r.transition("querynode", startup.Transition{From: startup.StateInitializing, To: startup.StateInitializing, At: at(4)})
	r.transition("querynode", startup.Transition{From: startup.StateHealthy, To: startup.StateStopping, At: at(5), Reason: "ctx done"})
	ev := r.events()
	require.Equal(t, Event{Time: at(5), Role: "querynode", Kind: "process", From: "Healthy", To: "Stopping", Detail: "ctx done"}, ev[0])
	require.Equal(t, Event{Time: at(4), Role: "querynode", Kind: "process", To: "Initializing"}, ev[1])
}

// TestPolling moves a fake clock: each tick records what changed, and the
// Runner's transitions are recorded as they come.
func TestPolling(t *testing.T) {
	clock := clockwork.NewFakeClockAt(t0)
	mgr := &fakeManager{}
	mgr.set(clientmanager.NodeStatus{NodeID: 4, Role: "querynode", State: clientmanager.NodeOnline})
	run := subscribingRunner{fakeRunner: &fakeRunner{state: startup.StateHealthy}, trs: make(chan startup.Transition)}
	run.s.ServerName = "rootcoord"
	cfg := DefaultConfig()
	h, err := New(Sources{Manager: mgr, Runner: run}, cfg, WithClock(clock))
	require.NoError(t, err)
	defer h.Close()

	has := func(want Event) func() bool {
		return func() bool {
			for _, e := range h.rec.events() {
				if normalize(e) == want {
					return true
				}
			}
			return false
		}
	}
	require.Eventually(t, has(Event{Time: t0, Role: "querynode", NodeID: 4, Kind: "node", To: "online"}),
		defaultTestTimeout, time.Millisecond, "the first poll")

	mgr.set(clientmanager.NodeStatus{NodeID: 4, Role: "querynode", State: clientmanager.NodeSuspect, LastError: "reset"})
	require.NoError(t, clock.BlockUntilContext(t.Context(), 1))
	clock.Advance(cfg.PollInterval)
	require.Eventually(t, has(Event{Time: t0.Add(cfg.PollInterval), Role: "querynode", NodeID: 4, Kind: "node",
		From: "online", To: "suspect", Detail: "reset"}), defaultTestTimeout, time.Millisecond, "the next tick")

	run.trs <- startup.Transition{From: startup.StateHealthy, To: startup.StateStandBy, At: t0, Reason: "fenced"}
	require.Eventually(t, has(Event{Time: t0, Role: "rootcoord", Kind: "process", From: "Healthy", To: "StandBy", Detail: "fenced"}),
		defaultTestTimeout, time.Millisecond, "a transition")
	require.NoError(t, h.Close())
	require.NoError(t, h.Close(), "Close twice")
}
