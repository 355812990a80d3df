package session

import (
	"maps"
	"slices"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// keyRecord is the decoded value of one session key.
type keyRecord struct {
	s   Session
	rev int64 // the key's ModRevision
}

// state is what a watcher, or one List, knows about a role's keys, and
// which processes it has shown. A process is identified by the ServerID of
// its record; it is present while it holds at least one key (an exclusive
// active process holds two), and visible while present with a version in
// range. Events are the differences of visibility and record between two
// flushes. A state is owned by one goroutine.
type state struct {
	cfg    Config
	role   string
	filter versionFilter

	keys      map[string]int64               // key → ServerID of the record it holds
	nodes     map[int64]map[string]keyRecord // ServerID → the keys it holds
	shown     map[int64]Session              // visible processes, as last emitted
	touched   map[int64]struct{}             // processes changed since the last flush
	malformed map[string]int64               // key → ModRevision of a value reported malformed

	// onMalformed is called once per malformed value (key and revision);
	// onFiltered for each record stored whose version is out of range.
	onMalformed func(key string, rev int64, err error)
	onFiltered  func(s Session)
}

func newState(cfg Config, role string, f versionFilter) *state {
	return &state{
		cfg:       cfg,
		role:      role,
		filter:    f,
		keys:      make(map[string]int64),
		nodes:     make(map[int64]map[string]keyRecord),
		shown:     make(map[int64]Session),
		touched:   make(map[int64]struct{}),
		malformed: make(map[string]int64),
	}
}

// applyEvent applies one watch event. Keys of other roles are ignored.
func (st *state) applyEvent(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	id, ok := st.cfg.ParseKey(st.role, key)
	if !ok {
		return
	}
	switch ev.Type {
	case clientv3.EventTypePut:
		st.putValue(key, id, ev.Kv.Value, ev.Kv.ModRevision)
	case clientv3.EventTypeDelete:
		delete(st.malformed, key)
		st.remove(key)
	}
}

// replace makes the known keys equal to a listing taken at rev and returns
// the differences as events of revision rev. Keys whose ModRevision did not
// change are not decoded again.
func (st *state) replace(kvs []*mvccpb.KeyValue, rev int64) []Event {
	seen := make(map[string]struct{}, len(kvs))
	for _, kv := range kvs {
		key := string(kv.Key)
		id, ok := st.cfg.ParseKey(st.role, key)
		if !ok {
			continue
		}
		seen[key] = struct{}{}
		if owner, ok := st.keys[key]; ok && st.nodes[owner][key].rev == kv.ModRevision {
			continue
		}
		if st.malformed[key] == kv.ModRevision {
			continue // reported and skipped already
		}
		st.putValue(key, id, kv.Value, kv.ModRevision)
	}
	for key := range st.keys {
		if _, ok := seen[key]; !ok {
			st.remove(key)
		}
	}
	for key := range st.malformed {
		if _, ok := seen[key]; !ok {
			delete(st.malformed, key)
		}
	}
	return st.flush(rev)
}

// putValue decodes a key's new value; a malformed value is reported and
// counts as the key gone.
func (st *state) putValue(key string, keyID int64, value []byte, rev int64) {
	s, err := st.decode(keyID, value)
	if err != nil {
		if st.malformed[key] != rev {
			st.malformed[key] = rev
			if st.onMalformed != nil {
				st.onMalformed(key, rev, err)
			}
		}
		st.remove(key)
		return
	}
	delete(st.malformed, key)
	if owner, ok := st.keys[key]; ok && owner != s.ServerID {
		st.remove(key) // the key now holds another process's record
	}
	n := st.nodes[s.ServerID]
	if n == nil {
		n = make(map[string]keyRecord, 2)
		st.nodes[s.ServerID] = n
	}
	n[key] = keyRecord{s: s, rev: rev}
	st.keys[key] = s.ServerID
	st.touched[s.ServerID] = struct{}{}
	if st.onFiltered != nil && !st.filter.allows(s.Version) {
		st.onFiltered(s)
	}
}

// decode decodes the value of a key of st's role (keyID as decodeValue
// takes it). A record of another role, or without an Address, cannot be
// dialled as a process of the role: it is malformed.
func (st *state) decode(keyID int64, value []byte) (Session, error) {
	s, err := decodeValue(keyID, value)
	switch {
	case err != nil:
		return Session{}, err
	case s.ServerName != st.role:
		return Session{}, errors.Wrapf(ErrMalformed, "ServerName (%q) differs from the key's role (%q)", s.ServerName, st.role)
	case s.Address == "":
		return Session{}, errors.Wrap(ErrMalformed, "Address is empty")
	}
	return s, nil
}

func (st *state) remove(key string) {
	id, ok := st.keys[key]
	if !ok {
		return
	}
	delete(st.keys, key)
	n := st.nodes[id]
	delete(n, key)
	if len(n) == 0 {
		delete(st.nodes, id)
	}
	st.touched[id] = struct{}{}
}

// record returns a present process's record: that of the key written last
// (on a tie, of its own <role>-<ServerID> key).
func (st *state) record(id int64) (Session, bool) {
	var best keyRecord
	var bestKey string
	for k, r := range st.nodes[id] {
		if bestKey == "" || r.rev > best.rev || (r.rev == best.rev && k > bestKey) {
			best, bestKey = r, k
		}
	}
	return best.s, bestKey != ""
}

// flush returns, in ServerID order, the events of the processes touched
// since the last flush, with revision rev.
func (st *state) flush(rev int64) []Event {
	if len(st.touched) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(st.touched))
	clear(st.touched)
	var evs []Event
	for _, id := range ids {
		old, was := st.shown[id]
		cur, present := st.record(id)
		visible := present && st.filter.allows(cur.Version)
		switch {
		case visible && !was:
			st.shown[id] = cur
			evs = append(evs, Event{Type: EventAdd, Session: cur, Revision: rev})
		case !visible && was:
			delete(st.shown, id)
			evs = append(evs, Event{Type: EventDel, Session: old, Revision: rev})
		case visible && !sameRecord(old, cur):
			st.shown[id] = cur
			evs = append(evs, Event{Type: EventUpdate, Session: cur, Revision: rev})
		}
	}
	return evs
}

// sessions returns the visible processes sorted by ServerID.
func (st *state) sessions() []Session {
	out := make([]Session, 0, len(st.shown))
	for _, id := range slices.Sorted(maps.Keys(st.shown)) {
		out = append(out, st.shown[id])
	}
	return out
}
