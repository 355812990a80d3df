package session

import (
	"bytes"
	"encoding/json"
	"maps"
	"strconv"
)

// EventType says what happened to a session.
type EventType int

const (
	// EventAdd: a process became visible — registered, came into the
	// version range, or was found by a re-list. A subscriber's snapshot is
	// made of Adds.
	EventAdd EventType = iota + 1
	// EventUpdate: a visible process's record changed, such as Stopping
	// set, or a new LeaseID (a new incarnation under the same ServerID;
	// the consumer decides what that means for its connections).
	EventUpdate
	// EventDel: a process is gone — its last key was deleted or expired,
	// its value turned malformed, or it left the version range. The event
	// carries the last record the watcher knew.
	EventDel
)

// String returns "add", "update" or "del".
func (t EventType) String() string {
	switch t {
	case EventAdd:
		return "add"
	case EventUpdate:
		return "update"
	case EventDel:
		return "del"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// Event is one change of one process, as a subscriber sees it.
type Event struct {
	Type EventType
	// Session is the new record, or for EventDel the last known one. Its
	// ServerLabels map is shared between subscribers: read it, do not
	// change it.
	Session Session
	// Revision is the etcd revision at which the watcher learned the
	// change: the watch event's revision, or the revision of the re-list
	// that found it. It never decreases for one ServerID.
	Revision int64
}

// sameRecord reports whether a and b are the same record, unknown fields
// included.
func sameRecord(a, b Session) bool {
	return a.ServerID == b.ServerID && a.ServerName == b.ServerName && a.Address == b.Address &&
		a.Exclusive == b.Exclusive && a.Stopping == b.Stopping && a.Version == b.Version &&
		a.LeaseID == b.LeaseID && a.HostName == b.HostName && a.Incarnation == b.Incarnation &&
		maps.Equal(a.ServerLabels, b.ServerLabels) &&
		maps.EqualFunc(a.extra, b.extra, func(x, y json.RawMessage) bool { return bytes.Equal(x, y) })
}
