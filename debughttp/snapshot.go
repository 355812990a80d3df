package debughttp

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

// Manager is what the Handler reads of a client manager;
// *clientmanager.Manager satisfies it.
type Manager interface {
	Status() []clientmanager.NodeStatus
	RoleHealth(role string) clientmanager.HealthVerdict
}

// discoverySource is the optional ability of a Manager to report what its
// watchers know of etcd; *clientmanager.Manager has it. Without it the
// roles have no revision nor last sync time, and only roles with nodes are
// listed.
type discoverySource interface {
	Discovery() []clientmanager.DiscoveryStatus
}

// Runner is what the Handler reads of a component's lifecycle;
// *startup.Runner satisfies it.
type Runner interface {
	State() startup.State
	Session() session.Session
}

// transitionSource is the optional ability of a Runner to report its
// transitions with their reasons; without it the Handler records the
// Runner's state changes it sees when it polls.
type transitionSource interface {
	Subscribe(ctx context.Context) <-chan startup.Transition
}

// Snapshot is the JSON document of /debug/clientmanager.
type Snapshot struct {
	Title string    `json:"title"`
	Time  time.Time `json:"time"`
	// Process is this process's own component; nil without a Runner.
	Process *Process `json:"process,omitempty"`
	// Roles are the roles the manager knows, by name; empty without a
	// Manager.
	Roles []Role `json:"roles"`
	// Events are the recent events, newest first.
	Events []Event `json:"events"`
}

// Process is this process's component.
type Process struct {
	Role     string `json:"role"`
	ServerID int64  `json:"server_id,omitempty"`
	Address  string `json:"address,omitempty"`
	Version  string `json:"version,omitempty"`
	// LeaseID is the session's lease, in hexadecimal as etcdctl prints
	// it; empty before registration.
	LeaseID   string `json:"lease_id,omitempty"`
	Exclusive bool   `json:"exclusive"`
	Stopping  bool   `json:"stopping"`
	// State is the Runner's state, such as "Healthy"; Ready is State ==
	// Healthy, what /readyz answers.
	State string `json:"state"`
	Ready bool   `json:"ready"`
}

// Role is one role the manager knows.
type Role struct {
	Role string `json:"role"`
	// Health is RoleHealth's verdict: healthy, degraded or unhealthy, and
	// Reasons why it is not healthy.
	Health  string   `json:"health"`
	Reasons []string `json:"reasons,omitempty"`
	// Available is the number of nodes in state online.
	Available int `json:"available"`
	// Revision is the etcd revision the role's node list is current at:
	// its watcher has applied every change up to it; 0 before its first
	// list (or for a Manager that does not report it). LastSync is the
	// watcher's last successful contact with etcd; its age is how stale
	// the list may be.
	Revision int64      `json:"revision"`
	LastSync *time.Time `json:"last_sync,omitempty"`
	Nodes    []Node     `json:"nodes"`
}

// Node is one node (one session) of a role, as the manager sees it.
type Node struct {
	NodeID  int64  `json:"node_id"`
	Address string `json:"address"`
	LeaseID string `json:"lease_id,omitempty"`
	// State is a clientmanager.NodeState: connecting, online, suspect,
	// unreachable, stopping or gone; StateSince when it began.
	State      string     `json:"state"`
	StateSince *time.Time `json:"state_since,omitempty"`
	// Breaker is the circuit breaker's state: closed, open or half-open.
	Breaker             string `json:"breaker"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	// InFlight counts the calls in progress on the node; Queued those
	// waiting for a slot of its bulkhead.
	InFlight int64 `json:"in_flight"`
	Queued   int   `json:"queued"`
	// LatencyMS is the moving average of the attempt latencies, in
	// milliseconds; 0 before the first attempt.
	LatencyMS float64 `json:"latency_ms"`
	// LastError says why the node is not online; LastFailure and
	// LastFailureAt are the last call failure the breaker counted.
	LastError     string     `json:"last_error,omitempty"`
	LastFailure   string     `json:"last_failure,omitempty"`
	LastFailureAt *time.Time `json:"last_failure_at,omitempty"`
}

// Event is one recorded change.
type Event struct {
	Time time.Time `json:"time"`
	// Role and NodeID say whose change it is; NodeID is 0 for this
	// process's own lifecycle.
	Role   string `json:"role"`
	NodeID int64  `json:"node_id,omitempty"`
	// Kind is "node" (a node's state), "breaker" or "process" (this
	// process's Runner).
	Kind string `json:"kind"`
	// From and To are the states before and after; From is empty for a
	// node that appeared, To is "removed" for one that is no longer
	// listed.
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	// Detail is the error or reason that came with the change.
	Detail string `json:"detail,omitempty"`
}

// process returns this process's part of the snapshot, or nil.
func process(r Runner) *Process {
	if r == nil {
		return nil
	}
	s, st := r.Session(), r.State()
	p := &Process{Role: s.ServerName, ServerID: s.ServerID, Address: s.Address, Version: s.Version,
		Exclusive: s.Exclusive, Stopping: s.Stopping, State: st.String(), Ready: st == startup.StateHealthy}
	if s.LeaseID > 0 {
		p.LeaseID = strconv.FormatInt(s.LeaseID, 16)
	}
	return p
}

// roles groups st by role (st is ordered by role, then NodeID), adds what
// the manager's watchers know of etcd (and the roles they follow that have
// no node) and judges each role's health.
func roles(m Manager, st []clientmanager.NodeStatus) []Role {
	out := []Role{}
	for _, n := range st {
		if len(out) == 0 || out[len(out)-1].Role != n.Role {
			out = append(out, Role{Role: n.Role, Nodes: []Node{}})
		}
		r := &out[len(out)-1]
		r.Nodes = append(r.Nodes, node(n))
		if n.State == clientmanager.NodeOnline {
			r.Available++
		}
	}
	if ds, ok := m.(discoverySource); ok {
		out = withDiscovery(out, ds.Discovery())
	}
	for i := range out {
		v := m.RoleHealth(out[i].Role)
		out[i].Health, out[i].Reasons = v.Health.String(), v.Reasons
	}
	return out
}

// withDiscovery sets the revision and last sync of rs's roles from ds,
// adding the roles of ds that have no node; both are ordered by role, and
// so is the result.
func withDiscovery(rs []Role, ds []clientmanager.DiscoveryStatus) []Role {
	byRole := make(map[string]int, len(rs))
	for i, r := range rs {
		byRole[r.Role] = i
	}
	for _, d := range ds {
		i, ok := byRole[d.Role]
		if !ok {
			rs = append(rs, Role{Role: d.Role, Nodes: []Node{}})
			i = len(rs) - 1
			byRole[d.Role] = i
		}
		rs[i].Revision, rs[i].LastSync = d.Revision, timePtr(d.LastSync)
	}
	slices.SortStableFunc(rs, func(a, b Role) int { return cmp.Compare(a.Role, b.Role) })
	return rs
}

func node(n clientmanager.NodeStatus) Node {
	out := Node{
		NodeID:              n.NodeID,
		Address:             n.Address,
		State:               n.State.String(),
		StateSince:          timePtr(n.Since),
		Breaker:             n.Breaker.String(),
		ConsecutiveFailures: n.ConsecutiveFailures,
		InFlight:            n.InFlight,
		Queued:              n.Queued,
		LatencyMS:           float64(n.LatencyEWMA.Microseconds()) / 1e3,
		LastError:           n.LastError,
		LastFailure:         n.LastFailureError,
		LastFailureAt:       timePtr(n.LastFailure),
	}
	if n.LeaseID > 0 {
		out.LeaseID = strconv.FormatInt(n.LeaseID, 16)
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
