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
	s    Session
	rev  int64  // the key's ModRevision
	seen uint64 // the last list that read the key (see beginList)
}

// proc is what the role's keys hold of one process: the record of its
// own key <role>-<ServerID> and, for an exclusive role's active process,
// the record of the active key <role>. A <role>-<ServerID> key holds a
// record of that ServerID (decodeValue), so a process holds two keys at
// most.
type proc struct {
	id      int64
	own     keyRecord
	hasOwn  bool
	active  *keyRecord // nil unless the process holds the active key
	touched bool       // in state.touched
}

// record returns the record of the key written last (on a tie, of its own
// key), and whether it holds a key.
func (p *proc) record() (Session, bool) {
	switch {
	case p.active != nil && (!p.hasOwn || p.active.rev > p.own.rev):
		return p.active.s, true
	case p.hasOwn:
		return p.own.s, true
	}
	return Session{}, false
}

// state is what a watcher, or one List, knows about a role's keys, and
// which processes it has shown. A process is identified by the ServerID of
// its record; it is present while it holds at least one key (an exclusive
// active process holds two), and visible while present with a version in
// range. Events are the differences of visibility and record between two
// flushes. A state is owned by one goroutine. It costs one proc and one
// shown record per process, and no map per key.
type state struct {
	cfg    Config
	role   string
	filter versionFilter

	procs     map[int64]*proc           // processes that hold a key or were touched since the last flush
	activeID  int64                     // ServerID of the active key's record; 0: no active key
	shown     map[int64]Session         // visible processes, as last emitted
	touched   []int64                   // processes changed since the last flush, each once
	malformed map[string]malformedValue // key → a value reported malformed
	list      uint64                    // the list in progress, or the last one

	// onMalformed is called once per malformed value (key and revision);
	// onFiltered for each record stored whose version is out of range.
	onMalformed func(key string, rev int64, err error)
	onFiltered  func(s Session)
}

// malformedValue is a key whose value was reported malformed.
type malformedValue struct {
	rev  int64  // its ModRevision
	seen uint64 // the last list that read it
}

func newState(cfg Config, role string, f versionFilter) *state {
	return &state{
		cfg:       cfg,
		role:      role,
		filter:    f,
		procs:     make(map[int64]*proc),
		shown:     make(map[int64]Session),
		malformed: make(map[string]malformedValue),
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
		st.remove(id)
	}
}

// replace makes the known keys equal to a listing taken at rev and returns
// the differences as events of revision rev.
func (st *state) replace(kvs []*mvccpb.KeyValue, rev int64) []Event {
	st.beginList()
	st.listPage(kvs)
	return st.endList(rev)
}

// beginList starts a list of the role's keys, given page by page to
// listPage and ended by endList. A list that is not ended leaves the keys
// it read applied, and nothing emitted: the next list emits the
// differences.
func (st *state) beginList() { st.list++ }

// listPage applies one page of the list in progress. Keys whose
// ModRevision did not change are not decoded again.
func (st *state) listPage(kvs []*mvccpb.KeyValue) {
	for _, kv := range kvs {
		key := string(kv.Key)
		id, ok := st.cfg.ParseKey(st.role, key)
		if !ok {
			continue
		}
		if r := st.keyRecord(id); r != nil && r.rev == kv.ModRevision {
			r.seen = st.list
			continue
		}
		if m, ok := st.malformed[key]; ok && m.rev == kv.ModRevision {
			st.malformed[key] = malformedValue{rev: m.rev, seen: st.list}
			continue // reported and skipped already
		}
		st.putValue(key, id, kv.Value, kv.ModRevision)
	}
}

// endList removes the keys the list in progress did not read, and returns
// the differences as events of revision rev, the list's.
func (st *state) endList(rev int64) []Event {
	for _, p := range st.procs {
		if p.hasOwn && p.own.seen != st.list {
			st.remove(p.id)
		}
	}
	if r := st.keyRecord(0); r != nil && r.seen != st.list {
		st.remove(0)
	}
	for key, m := range st.malformed {
		if m.seen != st.list {
			delete(st.malformed, key)
		}
	}
	if len(st.shown) == 0 && len(st.touched) > 0 {
		st.shown = make(map[int64]Session, len(st.touched)) // the first list: sized once
	}
	return st.flush(rev)
}

// keyRecord returns the record of the key of keyID (0: the active key),
// or nil.
func (st *state) keyRecord(keyID int64) *keyRecord {
	if keyID == 0 {
		if p := st.procs[st.activeID]; p != nil {
			return p.active
		}
		return nil
	}
	if p := st.procs[keyID]; p != nil && p.hasOwn {
		return &p.own
	}
	return nil
}

// putValue decodes a key's new value; a malformed value is reported and
// counts as the key gone.
func (st *state) putValue(key string, keyID int64, value []byte, rev int64) {
	s, err := st.decode(keyID, value)
	if err != nil {
		if m, ok := st.malformed[key]; !ok || m.rev != rev {
			if st.onMalformed != nil {
				st.onMalformed(key, rev, err)
			}
		}
		st.malformed[key] = malformedValue{rev: rev, seen: st.list}
		st.remove(keyID)
		return
	}
	if len(st.malformed) > 0 {
		delete(st.malformed, key)
	}
	r := keyRecord{s: s, rev: rev, seen: st.list}
	if keyID == 0 {
		if st.activeID != s.ServerID {
			st.remove(0) // the key now holds another process's record
		}
		p := st.proc(s.ServerID)
		p.active = &r
		st.activeID = s.ServerID
	} else {
		p := st.proc(keyID)
		p.own, p.hasOwn = r, true
	}
	if st.onFiltered != nil && !st.filter.allows(s.Version) {
		st.onFiltered(s)
	}
}

// proc returns the process id, made if need be, marked touched.
func (st *state) proc(id int64) *proc {
	p := st.procs[id]
	if p == nil {
		p = &proc{id: id}
		st.procs[id] = p
	}
	st.touch(p)
	return p
}

func (st *state) touch(p *proc) {
	if !p.touched {
		p.touched = true
		st.touched = append(st.touched, p.id)
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

// remove forgets the key of keyID (0: the active key).
func (st *state) remove(keyID int64) {
	if keyID == 0 {
		if p := st.procs[st.activeID]; p != nil && p.active != nil {
			p.active = nil
			st.touch(p)
		}
		st.activeID = 0
		return
	}
	if p := st.procs[keyID]; p != nil && p.hasOwn {
		p.own, p.hasOwn = keyRecord{}, false
		st.touch(p)
	}
}

// maxKeptTouched is the largest touched list kept for reuse after a flush.
const maxKeptTouched = 1024

// flush returns, in ServerID order, the events of the processes touched
// since the last flush, with revision rev.
func (st *state) flush(rev int64) []Event {
	if len(st.touched) == 0 {
		return nil
	}
	ids := st.touched
	slices.Sort(ids)
	defer func() {
		if cap(ids) <= maxKeptTouched {
			st.touched = ids[:0]
		} else {
			st.touched = nil // a large list's: let it go
		}
	}()
	evs := make([]Event, 0, len(ids))
	for _, id := range ids {
		p := st.procs[id]
		p.touched = false
		old, was := st.shown[id]
		cur, present := p.record()
		if !present {
			delete(st.procs, id)
		}
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
	if len(evs) == 0 {
		return nil
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
