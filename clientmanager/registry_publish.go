package clientmanager

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// batch is the changes of the registry queued since the last publication.
type batch struct {
	changes []change
	done    chan struct{} // closed once the batch is published
	joined  chan struct{} // capacity 1: a change joined (see gather)
	urgent  bool          // it holds a change that must be published at once
}

// change is one queued change of the registry: a role added (view set),
// or a node whose availability changed. Its fields say what the snapshot
// holds once it is published.
type change struct {
	role string
	view *roleView // a role added: its empty view

	id     int64
	inRole bool    // the role is known: entry is its available client of id
	entry  *Client // the role's available client of id; nil: none
	node   *Client // the node map's entry for id; nil: none
	ev     ClientEvent
}

// queueLocked adds ch to the pending batch and returns the batch and
// whether the caller is its leader (its first writer), which publishes it.
func (r *registry) queueLocked(ch change) (*batch, bool) {
	b := r.pending
	leader := b == nil
	if leader {
		b = &batch{changes: r.spare, done: make(chan struct{}), joined: make(chan struct{}, 1)}
		r.spare = nil
		r.pending = b
	}
	b.changes = append(b.changes, ch)
	// A node that leaves, or a role added, is published at once; a node
	// that becomes available may wait for others (see gather).
	if ch.ev.Type != ClientOnline {
		b.urgent = true
	}
	select {
	case b.joined <- struct{}{}:
	default:
	}
	return b, leader
}

// commit returns once b is published. The leader of b waits for the
// publication in progress, if any, then publishes b with every change
// queued meanwhile; the other writers of b wait for it. A nil b is nothing
// to wait for.
func (r *registry) commit(b *batch, leader bool) {
	if b == nil {
		return
	}
	if !leader {
		<-b.done
		return
	}
	r.gather(b)
	r.pub.Lock()
	defer r.pub.Unlock()
	r.mu.Lock()
	r.pending = nil // b: only its leader takes it
	closed := r.closed
	r.mu.Unlock()
	if !closed {
		r.publish(b)
	}
	close(b.done)
}

// Batching the nodes that come online. Publishing copies the changed
// views and the node map, O(n) for n available nodes, so n nodes coming
// online one publication each (New, with every node dialed at once) would
// cost O(n²). The leader of a batch of nodes coming online therefore
// waits while other nodes are being dialed or reconnected (Connecting or
// Suspect) and some of them changed state within the last
// batchQuietPeriod — a storm is going on, and they may join its batch —
// until the batch holds 1/batchFraction of the available nodes, and at
// most batchDelayPerNode per available node (within [minBatchDelay,
// maxBatchDelay]). The available nodes grow geometrically, so a storm of
// n nodes costs O(n) copying in O(log n) publications, plus one
// publication of O(n) per O(n) of waiting: a long storm copies at a
// bounded rate whatever the size. A node that leaves is published at
// once, with the batch it joins. A node that comes online is published at
// once when no other node is being dialed, or when no batch was published
// within that same delay — the first of a storm, or a node added while
// others stand suspect (a standby, a crashed process whose lease has not
// expired): waiting would not spare a copy; within batchQuietPeriod when
// those being dialed stand still (black holes).
//
// The waits are real time, not the manager's clock: they amortise work,
// they are no timeouts of the protocol, and they must pass while a test's
// fake clock stands still.
const (
	batchFraction     = 4
	batchQuietPeriod  = 5 * time.Millisecond
	batchDelayPerNode = 50 * time.Microsecond
	minBatchDelay     = 10 * time.Millisecond
	maxBatchDelay     = time.Second
)

// gather waits until b should be published (see batchFraction).
func (r *registry) gather(b *batch) {
	var quiet, deadline *time.Timer
	var settled uint64
	for {
		r.mu.Lock()
		ready, delay := r.readyLocked(b, deadline == nil, time.Now())
		moved := r.settled != settled
		settled = r.settled
		r.mu.Unlock()
		switch {
		case ready:
			return
		case deadline == nil:
			quiet, deadline = time.NewTimer(batchQuietPeriod), time.NewTimer(delay)
			defer quiet.Stop()
			defer deadline.Stop()
		case moved:
			quiet.Reset(batchQuietPeriod)
		}
		select {
		case <-b.joined:
		case <-quiet.C:
			r.mu.Lock()
			moved = r.settled != settled
			r.mu.Unlock()
			if !moved {
				return
			}
		case <-deadline.C:
			return
		}
	}
}

// readyLocked reports whether b is to be published at now, and how long
// its leader waits at most for others to join it; first: the leader has
// not waited yet. The caller holds mu.
func (r *registry) readyLocked(b *batch, first bool, now time.Time) (ready bool, delay time.Duration) {
	delay = min(max(time.Duration(len(r.nodes))*batchDelayPerNode, minBatchDelay), maxBatchDelay)
	ready = b.urgent || r.settling == 0 || len(b.changes)*batchFraction >= len(r.nodes) ||
		(first && now.Sub(r.lastPublished) >= delay)
	return ready, delay
}

// publish stores the snapshot that b makes of the current one, then hands
// b's events to the subscribers of their roles. The caller holds pub. The
// views of the roles b changed are merged, not rebuilt: a view of n nodes
// changed by k of them costs O(n) copying and O(k log k) sorting, and the
// node map is copied once per batch. The changes of one batch are
// published together, so their events go out ordered by role and
// ServerID; those of one node keep their order.
func (r *registry) publish(b *batch) {
	old := r.load()
	next := &snapshot{roles: old.roles, few: old.few, nodes: old.nodes}
	// The node map first, in the order of the changes: one ServerID may
	// change in several roles.
	nodesCopied, rolesCopied := false, false
	for _, ch := range b.changes {
		if ch.view != nil {
			continue
		}
		if !nodesCopied {
			next.nodes, nodesCopied = maps.Clone(old.nodes), true
		}
		if ch.node != nil {
			next.nodes[ch.id] = ch.node
		} else {
			delete(next.nodes, ch.id)
		}
	}
	chs := b.changes
	slices.SortStableFunc(chs, func(a, b change) int {
		return cmp.Or(cmp.Compare(a.role, b.role), cmp.Compare(a.id, b.id))
	})
	for i := 0; i < len(chs); {
		j := i + 1
		for j < len(chs) && chs[j].role == chs[i].role {
			j++
		}
		if run := chs[i:j]; slices.ContainsFunc(run, inView) {
			if !rolesCopied {
				next.roles, rolesCopied = maps.Clone(old.roles), true
			}
			next.roles[run[0].role] = mergeView(old.roles[run[0].role], run)
		}
		i = j
	}
	if rolesCopied {
		next.few = listRoles(next.roles)
	}
	r.snap.Store(next)
	r.published++
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastPublished = time.Now()
	for _, ch := range chs {
		if ch.ev.Client == nil {
			continue
		}
		for s := range r.subs[ch.role] {
			s.push(ch.ev)
		}
	}
	if cap(chs) <= maxSpareChanges {
		clear(chs)
		r.spare = chs[:0]
	}
}

// maxSpareChanges bounds the buffer of changes kept for the next batch.
const maxSpareChanges = 4096

func inView(ch change) bool { return ch.view != nil || ch.inRole }

// mergeView returns old (nil for a role not in the snapshot yet) with
// chs, changes of its role sorted by ServerID (those of one node in the
// order they were made), applied: the last change of each node wins; a
// role added sets the view's constants.
func mergeView(old *roleView, chs []change) *roleView {
	v := &roleView{}
	if old != nil {
		*v = *old
	}
	n := 0 // nodes changed
	for i, ch := range chs {
		switch {
		case ch.view != nil:
			v.bal, v.shared, v.unavailable = ch.view.bal, ch.view.shared, ch.view.unavailable
		case ch.inRole && (i+1 == len(chs) || chs[i+1].id != ch.id):
			n++
		}
	}
	if n == 0 {
		return v
	}
	ids := make([]int64, 0, len(v.ids)+n)
	clients := make([]*Client, 0, len(v.ids)+n)
	i := 0
	for k, up := range chs {
		if !up.inRole || (k+1 < len(chs) && chs[k+1].id == up.id) {
			continue // not a node's change, or not its last
		}
		// Copy the unchanged run before up in one go.
		j, found := slices.BinarySearch(v.ids[i:], up.id)
		j += i
		ids = append(ids, v.ids[i:j]...)
		clients = append(clients, v.clients[i:j]...)
		i = j
		if found {
			i++ // replaced or removed
		}
		if up.entry != nil {
			ids = append(ids, up.id)
			clients = append(clients, up.entry)
		}
	}
	ids = append(ids, v.ids[i:]...)
	clients = append(clients, v.clients[i:]...)
	if len(ids) == 0 {
		ids, clients = nil, nil
	}
	v.ids, v.clients = ids, clients
	return v
}
