package clientmanager

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/session"
)

// nodeConn is what the manager knows about one process of a node,
// beside its session: the state of its connection and whether call sites
// may use it. Fields are guarded by the registry's mutex. The node's
// resilience (breaker, bulkhead, call statistics) lives in the Client, in
// lock-free structures of its own.
type nodeConn struct {
	state     NodeState // Connecting, Online, Suspect, Unreachable or Gone
	lastErr   error
	since     time.Time
	available bool // in the snapshot, or queued to be
	removed   bool // left the registry for good
	brkDown   bool // its breaker is not closed: counted in roleShared.notClosed
}

// snapshot is the immutable view read by call sites.
type snapshot struct {
	roles map[string]*roleView
	// few lists roles' views when there are maxScannedRoles or fewer, the
	// rule for a process's dependencies: role finds a name among a few
	// by comparing it, faster than hashing it.
	few []namedView
	// nodes maps a ServerID to an available node with that ID. A process
	// may serve several roles under one ServerID: the entry keeps the node
	// it points at while that stays available, then moves to the
	// available node of the first role by name.
	nodes  map[int64]*Client
	closed bool
}

// maxScannedRoles is the most roles a snapshot finds by scanning few.
const maxScannedRoles = 8

// namedView is one entry of snapshot.few.
type namedView struct {
	name string
	view *roleView
}

// role returns the view of the role name, nil if the role is not known.
func (s *snapshot) role(name string) *roleView {
	if len(s.roles) <= maxScannedRoles {
		for i := range s.few {
			if s.few[i].name == name {
				return s.few[i].view
			}
		}
		return nil
	}
	return s.roles[name]
}

// listRoles returns roles as snapshot.few: nil when there are more than
// maxScannedRoles.
func listRoles(roles map[string]*roleView) []namedView {
	if len(roles) > maxScannedRoles {
		return nil
	}
	few := make([]namedView, 0, len(roles))
	for name, v := range roles {
		few = append(few, namedView{name, v})
	}
	return few
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
// ones as a snapshot. Writers (the role and connector goroutines) change
// the mutable state under mu and queue the change of a node's
// availability in the pending batch; readers only load the snapshot
// pointer. A writer returns once its change is published (see commit).
// Publishing copies the changed roles' views and the node map, O(n) for n
// available nodes, so changes share publications: those queued while an
// earlier batch is being published, and the nodes that come online
// during a storm (see gather), are published together. A storm of n
// nodes coming online costs O(n), not O(n²).
type registry struct {
	snap    atomic.Pointer[snapshot]
	clock   clockwork.Clock
	metrics *metrics

	// pub serialises publications: it is held while a batch is merged
	// into a new snapshot, stored and handed to subscribers. Taken before
	// mu, never after.
	pub sync.Mutex
	// published counts the batches published; guarded by pub.
	published int

	mu      sync.Mutex
	members map[memberKey]*Client // the current process of every listed node
	roles   map[string]*roleState
	subs    map[string]map[*watchSub]struct{}
	// nodes is what the snapshot's node map becomes once the pending
	// batch is published.
	nodes   map[int64]*Client
	pending *batch   // changes not published yet; nil: none
	spare   []change // the buffer of the last batch published, for the next
	closed  bool
	// settling counts the members that are Connecting or Suspect: nodes
	// whose Online may be on its way (see gather); settled counts the
	// changes of that number.
	settling int
	settled  uint64
	// lastPublished is when the last batch was published (real time:
	// see gather).
	lastPublished time.Time
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
		nodes:   make(map[int64]*Client),
	}
	r.snap.Store(&snapshot{roles: map[string]*roleView{}, nodes: map[int64]*Client{}})
	return r
}

func (r *registry) load() *snapshot { return r.snap.Load() }

// addRole makes role known, with no node yet.
func (r *registry) addRole(role string, bal balancer.Balancer, shared *roleShared) {
	r.mu.Lock()
	if _, ok := r.roles[role]; ok {
		r.mu.Unlock()
		return
	}
	rs := &roleState{bal: bal, shared: shared, unavailable: unavailableForRole(role), avail: make(map[int64]*Client)}
	r.roles[role] = rs
	b, leader := r.queueLocked(change{role: role, view: &roleView{bal: bal, shared: shared, unavailable: rs.unavailable}})
	r.mu.Unlock()
	r.commit(b, leader)
}

// addMember records c as the current process of its node, connecting.
func (r *registry) addMember(c *Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.node.state = NodeConnecting
	c.node.since = r.clock.Now()
	r.settle(1)
	r.members[keyOf(c)] = c
	r.metrics.nodeState(c.role, noState, NodeConnecting)
}

// settles is 1 for a state from which a node may soon be Online: it is
// being dialed, or its connection is being restored.
func settles(st NodeState) int {
	if st == NodeConnecting || st == NodeSuspect {
		return 1
	}
	return 0
}

// settle adds d to the number of settling members. The caller holds mu.
func (r *registry) settle(d int) {
	if d != 0 {
		r.settling += d
		r.settled++
	}
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
	if c.node.removed {
		r.mu.Unlock()
		return transition{}
	}
	from := displayState(c)
	if c.node.state != st {
		c.node.since = r.clock.Now()
		r.settle(settles(st) - settles(c.node.state))
	}
	c.node.state = st
	if err != nil || st == NodeOnline {
		c.node.lastErr = err
	}
	t, b, leader := r.changedLocked(c, from)
	r.mu.Unlock()
	r.commit(b, leader)
	return t
}

// setSession records a new record of the same process (such as Stopping
// set, or a new lease).
func (r *registry) setSession(c *Client, s session.Session) transition {
	r.mu.Lock()
	from := displayState(c)
	c.storeSession(s)
	if c.node.removed {
		r.mu.Unlock()
		return transition{}
	}
	if from != displayState(c) {
		c.node.since = r.clock.Now()
	}
	t, b, leader := r.changedLocked(c, from)
	r.mu.Unlock()
	r.commit(b, leader)
	return t
}

// remove takes c out of the registry for good. It is idempotent.
func (r *registry) remove(c *Client) transition {
	r.mu.Lock()
	if c.node.removed {
		r.mu.Unlock()
		return transition{}
	}
	from := displayState(c)
	r.settle(-settles(c.node.state))
	c.node.state, c.node.since = NodeGone, r.clock.Now()
	c.node.removed = true
	r.setBreakerDownLocked(c, false)
	t, b, leader := r.changedLocked(c, from)
	r.metrics.nodeState(c.role, NodeGone, noState)
	if k := keyOf(c); r.members[k] == c {
		delete(r.members, k)
		if c.bal != nil {
			c.bal.Remove(c.id)
		}
	}
	r.mu.Unlock()
	r.commit(b, leader)
	return t
}

// changedLocked updates metrics and the role's available set after c's
// state changed from from, and queues the change of c's availability, if
// any, for publication: commit(b, leader) publishes it.
func (r *registry) changedLocked(c *Client, from NodeState) (t transition, b *batch, leader bool) {
	to := displayState(c)
	if from != to {
		r.metrics.nodeState(c.role, from, to)
	}
	t = transition{from: from, to: to, changed: from != to}
	avail := to == NodeOnline
	if avail == c.node.available {
		return t, nil, false
	}
	c.node.available = avail
	ch := change{role: c.role, id: c.id, ev: ClientEvent{Type: ClientOffline, Client: c}}
	if avail {
		ch.ev.Type = ClientOnline
	}
	if rs := r.roles[c.role]; rs != nil {
		if avail {
			rs.avail[c.id] = c
		} else if rs.avail[c.id] == c {
			delete(rs.avail, c.id)
		}
		ch.entry, ch.inRole = rs.avail[c.id], true
	}
	ch.node = r.nodeLocked(c.id)
	b, leader = r.queueLocked(ch)
	return t, b, leader
}

// nodeLocked points nodes[id] at an available node with that ServerID —
// the one it held if that is still available, else the first by role
// name, else none — and returns it.
func (r *registry) nodeLocked(id int64) *Client {
	if c := r.nodes[id]; c != nil {
		if rs := r.roles[c.role]; rs != nil && rs.avail[id] == c {
			return c
		}
	}
	var best *Client
	for _, rs := range r.roles {
		if c := rs.avail[id]; c != nil && (best == nil || c.role < best.role) {
			best = c
		}
	}
	if best != nil {
		r.nodes[id] = best
	} else {
		delete(r.nodes, id)
	}
	return best
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
	if v := r.load().role(role); v != nil {
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

// close publishes an empty, closed snapshot; no later change is
// published.
func (r *registry) close() {
	r.pub.Lock()
	defer r.pub.Unlock()
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
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

// breakerChanged records whether c's breaker is closed; a removed node's
// late transitions are ignored.
func (r *registry) breakerChanged(c *Client, down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !c.node.removed {
		r.setBreakerDownLocked(c, down)
	}
}

func (r *registry) setBreakerDownLocked(c *Client, down bool) {
	if c.node.brkDown == down || c.shared == nil {
		return
	}
	c.node.brkDown = down
	if down {
		c.shared.notClosed.Add(1)
	} else {
		c.shared.notClosed.Add(-1)
	}
}
