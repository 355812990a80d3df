package clientmanager

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/session"
)

// nodeState is what the manager knows about one process of a node,
// beside its session: the state of its connection and whether call sites
// may use it. Fields are guarded by the registry's mutex. The node's
// resilience (breaker, bulkhead, call statistics) lives in the Client, in
// lock-free structures of its own.
type nodeState struct {
	state     NodeState // Connecting, Online, Suspect, Unreachable or Gone
	lastErr   error
	since     time.Time
	available bool // in the snapshot
	removed   bool // left the registry for good
	brkDown   bool // its breaker is not closed: counted in roleShared.notClosed
}

// snapshot is the immutable view read by call sites.
type snapshot struct {
	roles map[string]*roleView
	// nodes maps a ServerID to an available node with that ID. A process
	// may serve several roles under one ServerID: the entry keeps the node
	// it points at while that stays available, then moves to the
	// available node of the first role by name.
	nodes  map[int64]*Client
	closed bool
}

// roleView is one role's available clients, ordered by ServerID.
type roleView struct {
	bal         balancer.Balancer
	shared      *roleShared
	clients     []*Client
	ids         []int64
	unavailable error // returned when ids is empty
}

// roleState is the mutable state of a role behind its view.
type roleState struct {
	bal         balancer.Balancer
	shared      *roleShared
	unavailable error
	avail       map[int64]*Client
}

// registry holds every node the manager knows and publishes the available
// ones as a snapshot. Writers (the role and connector goroutines) change it
// under mu and store a new snapshot; readers only load the pointer.
type registry struct {
	snap    atomic.Pointer[snapshot]
	clock   clockwork.Clock
	metrics *metrics

	mu      sync.Mutex
	members map[memberKey]*Client // the current process of every listed node
	roles   map[string]*roleState
	subs    map[string]map[*watchSub]struct{}
}

// memberKey identifies a node: one ServerID may serve several roles.
type memberKey struct {
	role string
	id   int64
}

func keyOf(c *Client) memberKey { return memberKey{role: c.role, id: c.id} }

func newRegistry(clock clockwork.Clock, m *metrics) *registry {
	r := &registry{
		clock:   clock,
		metrics: m,
		members: make(map[memberKey]*Client),
		roles:   make(map[string]*roleState),
		subs:    make(map[string]map[*watchSub]struct{}),
	}
	r.snap.Store(&snapshot{roles: map[string]*roleView{}, nodes: map[int64]*Client{}})
	return r
}

func (r *registry) load() *snapshot { return r.snap.Load() }

// addRole makes role known, with no node yet.
func (r *registry) addRole(role string, bal balancer.Balancer, shared *roleShared) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.roles[role]; ok {
		return
	}
	r.roles[role] = &roleState{bal: bal, shared: shared, unavailable: unavailableForRole(role), avail: make(map[int64]*Client)}
	r.publishRole(role, 0, nil)
}

// addMember records c as the current process of its node, connecting.
func (r *registry) addMember(c *Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.node.state = NodeConnecting
	c.node.since = r.clock.Now()
	r.members[keyOf(c)] = c
	r.metrics.nodeState(c.role, noState, NodeConnecting)
}

// transition is a change of a node's displayed state, for logs.
type transition struct {
	from, to NodeState
	changed  bool
}

// setState records the state of c's connection and err, the reason for a
// state other than Online.
func (r *registry) setState(c *Client, st NodeState, err error) transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.node.removed {
		return transition{}
	}
	from := displayState(c)
	if c.node.state != st {
		c.node.since = r.clock.Now()
	}
	c.node.state = st
	if err != nil || st == NodeOnline {
		c.node.lastErr = err
	}
	return r.changedLocked(c, from)
}

// setSession records a new record of the same process (such as Stopping
// set, or a new lease).
func (r *registry) setSession(c *Client, s session.Session) transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	from := displayState(c)
	c.sess.Store(&s)
	if c.node.removed {
		return transition{}
	}
	if from != displayState(c) {
		c.node.since = r.clock.Now()
	}
	return r.changedLocked(c, from)
}

// remove takes c out of the registry for good. It is idempotent.
func (r *registry) remove(c *Client) transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.node.removed {
		return transition{}
	}
	from := displayState(c)
	c.node.state, c.node.since = NodeGone, r.clock.Now()
	c.node.removed = true
	r.setBreakerDownLocked(c, false)
	t := r.changedLocked(c, from)
	r.metrics.nodeState(c.role, NodeGone, noState)
	if k := keyOf(c); r.members[k] == c {
		delete(r.members, k)
		if c.bal != nil {
			c.bal.Remove(c.id)
		}
	}
	return t
}

// changedLocked updates metrics, the snapshot and subscribers after c's
// state changed from from.
func (r *registry) changedLocked(c *Client, from NodeState) transition {
	to := displayState(c)
	if from != to {
		r.metrics.nodeState(c.role, from, to)
	}
	avail := to == NodeOnline
	if avail != c.node.available {
		c.node.available = avail
		rs := r.roles[c.role]
		if rs != nil {
			if avail {
				rs.avail[c.id] = c
			} else if rs.avail[c.id] == c {
				delete(rs.avail, c.id)
			}
		}
		var ev *ClientEvent
		if avail {
			ev = &ClientEvent{Type: ClientOnline, Client: c}
		} else {
			ev = &ClientEvent{Type: ClientOffline, Client: c}
		}
		r.publishRole(c.role, c.id, ev)
	}
	return transition{from: from, to: to, changed: from != to}
}

// publishRole stores a snapshot with role's view rebuilt, id's entry of
// the node map updated, and hands ev to role's subscribers.
func (r *registry) publishRole(role string, id int64, ev *ClientEvent) {
	old := r.load()
	next := &snapshot{roles: maps.Clone(old.roles), nodes: old.nodes, closed: old.closed}
	if rs := r.roles[role]; rs != nil {
		next.roles[role] = buildView(rs)
	}
	if id != 0 {
		next.nodes = maps.Clone(old.nodes)
		r.setNodeLocked(next.nodes, id)
	}
	r.snap.Store(next)
	if ev != nil {
		for s := range r.subs[role] {
			s.push(*ev)
		}
	}
}

// setNodeLocked points nodes[id] at an available node with that ServerID:
// the one it held if that is still available, else the first by role
// name, else none.
func (r *registry) setNodeLocked(nodes map[int64]*Client, id int64) {
	if c := nodes[id]; c != nil {
		if rs := r.roles[c.role]; rs != nil && rs.avail[id] == c {
			return
		}
	}
	delete(nodes, id)
	var best *Client
	for _, rs := range r.roles {
		if c := rs.avail[id]; c != nil && (best == nil || c.role < best.role) {
			best = c
		}
	}
	if best != nil {
		nodes[id] = best
	}
}

func buildView(rs *roleState) *roleView {
	v := &roleView{bal: rs.bal, shared: rs.shared, unavailable: rs.unavailable}
	if len(rs.avail) == 0 {
		return v
	}
	v.clients = slices.SortedFunc(maps.Values(rs.avail), func(a, b *Client) int { return cmp.Compare(a.id, b.id) })
	v.ids = make([]int64, len(v.clients))
	for i, c := range v.clients {
		v.ids[i] = c.id
	}
	return v
}

// subscribe adds s to role's subscribers and queues the current online set
// for it, in ServerID order.
func (r *registry) subscribe(role string, s *watchSub) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.subs[role]
	if set == nil {
		set = make(map[*watchSub]struct{})
		r.subs[role] = set
	}
	set[s] = struct{}{}
	if v := r.load().roles[role]; v != nil {
		for _, c := range v.clients {
			s.push(ClientEvent{Type: ClientOnline, Client: c})
		}
	}
}

func (r *registry) unsubscribe(role string, s *watchSub) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subs[role], s)
	if len(r.subs[role]) == 0 {
		delete(r.subs, role)
	}
}

// close publishes an empty, closed snapshot.
func (r *registry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snap.Store(&snapshot{roles: map[string]*roleView{}, nodes: map[int64]*Client{}, closed: true})
}

// displayState is the state Status shows: a Stopping session turns an
// Online node into a Stopping one.
func displayState(c *Client) NodeState {
	if c.node.state == NodeOnline && c.Session().Stopping {
		return NodeStopping
	}
	return c.node.state
}

// roleMembers appends to dst every listed node of role ("" for every
// role) and returns it.
func (r *registry) roleMembers(dst []*Client, role string) []*Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.members {
		if role == "" || c.role == role {
			dst = append(dst, c)
		}
	}
	return dst
}

// roleOf returns the role of a listed node with ServerID id — the first by
// name when the ID serves several roles — or "" when none is listed.
func (r *registry) roleOf(id int64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	role := ""
	for k := range r.members {
		if k.id == id && (role == "" || k.role < role) {
			role = k.role
		}
	}
	return role
}
