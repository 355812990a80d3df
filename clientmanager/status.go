package clientmanager

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/coordkit/clientmanager/clientmanager/breaker"
)

// NodeState is where a node stands, as Status reports it.
type NodeState int

const (
	// NodeConnecting: the node is listed and being dialed.
	NodeConnecting NodeState = iota
	// NodeOnline: listed, connected and not stopping — available.
	NodeOnline
	// NodeSuspect: listed, but its connection left READY (the process
	// died, the network broke), or it is connected and its health service
	// says NOT_SERVING (a standby, a component starting); it is available
	// again once the connection is READY and the server serves.
	NodeSuspect
	// NodeUnreachable: listed, but every dial attempt failed; it is
	// re-probed every ReprobeInterval and dialed again on its next update.
	NodeUnreachable
	// NodeStopping: listed with Stopping set; not picked for new calls.
	NodeStopping
	// NodeGone: its session was deleted or replaced, or the process at
	// its address rejected its identity.
	NodeGone
)

// noState stands for "no state" in metric updates.
const noState NodeState = -1

// String returns the state's name in lower case.
func (s NodeState) String() string {
	switch s {
	case NodeConnecting:
		return "connecting"
	case NodeOnline:
		return "online"
	case NodeSuspect:
		return "suspect"
	case NodeUnreachable:
		return "unreachable"
	case NodeStopping:
		return "stopping"
	case NodeGone:
		return "gone"
	}
	return "NodeState(" + strconv.Itoa(int(s)) + ")"
}

// NodeStatus describes one node the manager knows.
type NodeStatus struct {
	NodeID  int64
	Role    string
	Address string
	LeaseID int64
	State   NodeState
	// InFlight is the number of calls in progress on the node's connections
	// (through Client.Conn, within Invoke or not).
	InFlight int64
	// LastError is why the node is not online (the last dial error, the
	// connection's state), or empty.
	LastError string
	// Since is when State began.
	Since time.Time

	// Breaker is the state of the node's circuit breaker.
	Breaker breaker.State
	// BreakerSince is when the breaker last left the closed state; zero
	// while it is closed.
	BreakerSince time.Time
	// Queued is the number of calls waiting for a slot of the node's
	// bulkhead; BulkheadInFlight the number holding one.
	Queued, BulkheadInFlight int
	// LatencyEWMA is the exponentially weighted moving average (weight 0.2
	// for the newest) of the node's attempt latencies; zero before the
	// first attempt.
	LatencyEWMA time.Duration
	// ConsecutiveFailures is the number of failures its breaker recorded
	// in a row.
	ConsecutiveFailures int
	// LastFailure and LastFailureError are the time and error of the last
	// attempt the breaker counted as a failure; zero and empty if none.
	LastFailure      time.Time
	LastFailureError string
}

// Status returns every node of every dependency, ordered by role then
// NodeID.
func (m *Manager) Status() []NodeStatus {
	m.reg.mu.Lock()
	out := make([]NodeStatus, 0, len(m.reg.members))
	clients := make([]*Client, 0, len(m.reg.members)) // clients[i] is out[i]'s
	for _, c := range m.reg.members {
		clients = append(clients, c)
		s := c.Session()
		ns := NodeStatus{
			NodeID:   c.id,
			Role:     c.role,
			Address:  s.Address,
			LeaseID:  s.LeaseID,
			State:    displayState(c),
			InFlight: c.calls.inFlight(),
			Since:    c.node.since,
		}
		if c.node.lastErr != nil && ns.State != NodeOnline {
			ns.LastError = c.node.lastErr.Error()
		}
		out = append(out, ns)
	}
	m.reg.mu.Unlock()
	// The breakers are read after the lock is dropped: a read may
	// transition a breaker, and its listener takes the lock.
	for i := range out {
		fillResilience(&out[i], clients[i])
	}
	slices.SortFunc(out, func(a, b NodeStatus) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.NodeID, b.NodeID))
	})
	return out
}

// fillResilience sets the breaker, bulkhead and call statistics of ns.
func fillResilience(ns *NodeStatus, c *Client) {
	if c.brk == nil {
		return
	}
	snap := c.brk.Snapshot()
	ns.Breaker = snap.State
	ns.ConsecutiveFailures = snap.ConsecutiveFailures
	if since := c.health.downSince.Load(); since != 0 && snap.State != breaker.StateClosed {
		ns.BreakerSince = time.Unix(0, since)
	}
	st := c.bh.Stats()
	ns.Queued, ns.BulkheadInFlight = st.Queued, st.InFlight
	ns.LatencyEWMA = c.health.latency()
	if f := c.health.lastFail.Load(); f != nil {
		ns.LastFailure, ns.LastFailureError = f.at, f.err
	}
}
