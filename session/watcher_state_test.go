package session

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// op is one step of a state test: a watch event (put or delete) or a
// re-list (kvs) at rev, and the events it must produce.
type op struct {
	put  string // key to put val under
	val  []byte
	del  string // key to delete
	list []*mvccpb.KeyValue
	rev  int64
	want []Event
}

func (o op) run(t *testing.T, st *state) {
	t.Helper()
	var got []Event
	switch {
	case o.list != nil:
		got = st.replace(o.list, o.rev)
	case o.put != "":
		st.applyEvent(&clientv3.Event{Type: clientv3.EventTypePut,
			Kv: &mvccpb.KeyValue{Key: []byte(o.put), Value: o.val, ModRevision: o.rev}})
		got = st.flush(o.rev)
	default:
		st.applyEvent(&clientv3.Event{Type: clientv3.EventTypeDelete,
			Kv: &mvccpb.KeyValue{Key: []byte(o.del), ModRevision: o.rev}})
		got = st.flush(o.rev)
	}
	require.Len(t, got, len(o.want), "events %+v", got)
	for i := range got {
		require.Equal(t, o.want[i].Type, got[i].Type, "event %d", i)
		require.Equal(t, o.want[i].Revision, got[i].Revision, "event %d", i)
		require.True(t, sameRecord(o.want[i].Session, got[i].Session), "event %d: %+v", i, got[i].Session)
	}
}

func kv(key string, val []byte, rev int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(key), Value: val, ModRevision: rev}
}

func TestStateEvents(t *testing.T) {
	cfg := DefaultConfig()
	const role = "querynode"
	k := func(id int64) string { return cfg.Key(role, id) }
	active := cfg.ActiveKey(role)
	s1, s2 := rec(role, 1), rec(role, 2)
	s1stop := s1
	s1stop.Stopping = true
	s1new := s1
	s1new.LeaseID = 999
	old := s2
	old.Version = "1.9.0"
	enc := func(s Session) []byte { return mustEncode(t, s) }
	ev := func(typ EventType, s Session, rev int64) Event { return Event{Type: typ, Session: s, Revision: rev} }

	tests := []struct {
		name   string
		filter string
		ops    []op
	}{
		{name: "add update del", ops: []op{
			{put: k(1), val: enc(s1), rev: 5, want: []Event{ev(EventAdd, s1, 5)}},
			{put: k(1), val: enc(s1stop), rev: 6, want: []Event{ev(EventUpdate, s1stop, 6)}},
			{put: k(1), val: enc(s1stop), rev: 7}, // same record: nothing
			{put: k(1), val: enc(s1new), rev: 8, want: []Event{ev(EventUpdate, s1new, 8)}},
			{del: k(1), rev: 9, want: []Event{ev(EventDel, s1new, 9)}},
			{del: k(1), rev: 10},
		}},
		{name: "exclusive process holds two keys", ops: []op{
			{put: k(1), val: enc(s1), rev: 5, want: []Event{ev(EventAdd, s1, 5)}},
			{put: active, val: enc(s1), rev: 6},
			{put: active, val: enc(s1stop), rev: 7, want: []Event{ev(EventUpdate, s1stop, 7)}},
			{del: active, rev: 8, want: []Event{ev(EventUpdate, s1, 8)}}, // back to its own key's record
			{put: active, val: enc(s1), rev: 9},
			{del: k(1), rev: 10},
			{del: active, rev: 11, want: []Event{ev(EventDel, s1, 11)}},
		}},
		{name: "other roles sharing the prefix are ignored", ops: []op{
			{put: cfg.Key(role+"x", 3), val: enc(rec(role+"x", 3)), rev: 5},
			{put: cfg.ActiveKey(role + "x"), val: enc(rec(role+"x", 3)), rev: 6},
			{put: cfg.RolePrefix(role) + "-abc", val: enc(s1), rev: 7},
			{put: cfg.IDKey(), val: []byte("7"), rev: 8},
		}},
		{name: "malformed value is the key gone", ops: []op{
			{put: k(1), val: enc(s1), rev: 5, want: []Event{ev(EventAdd, s1, 5)}},
			{put: k(1), val: []byte("{"), rev: 6, want: []Event{ev(EventDel, s1, 6)}},
			{put: k(1), val: enc(s1), rev: 7, want: []Event{ev(EventAdd, s1, 7)}},
			{put: k(1), val: enc(s2), rev: 8, want: []Event{ev(EventDel, s1, 8)}}, // ServerID differs from the key's
			{put: k(2), val: []byte(`{"ServerID":"two","ServerName":"querynode"}`), rev: 9},
			{put: k(2), val: nil, rev: 10},
		}},
		{name: "version range", filter: ">= 2.0", ops: []op{
			{put: k(2), val: enc(old), rev: 5},
			{put: k(2), val: enc(s2), rev: 6, want: []Event{ev(EventAdd, s2, 6)}},
			{put: k(2), val: enc(old), rev: 7, want: []Event{ev(EventDel, s2, 7)}},
			{del: k(2), rev: 8},
			{put: k(1), val: enc(Session{ServerID: 1, ServerName: role, Address: "10.0.0.1:1", Version: "not-a-version"}), rev: 9},
		}},
		{name: "re-list emits the difference", ops: []op{
			{put: k(1), val: enc(s1), rev: 5, want: []Event{ev(EventAdd, s1, 5)}},
			{put: active, val: enc(s1), rev: 6},
			{put: k(2), val: enc(s2), rev: 7, want: []Event{ev(EventAdd, s2, 7)}},
			{list: []*mvccpb.KeyValue{kv(k(1), enc(s1new), 20), kv(k(3), enc(rec(role, 3)), 21), kv(k(4), []byte("x"), 22)},
				rev: 30, want: []Event{ev(EventUpdate, s1new, 30), ev(EventDel, s2, 30), ev(EventAdd, rec(role, 3), 30)}},
			{list: []*mvccpb.KeyValue{kv(k(1), enc(s1new), 20), kv(k(3), enc(rec(role, 3)), 21), kv(k(4), []byte("x"), 22)},
				rev: 31},
			{list: []*mvccpb.KeyValue{}, rev: 32,
				want: []Event{ev(EventDel, s1new, 32), ev(EventDel, rec(role, 3), 32)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseVersionRange(tt.filter)
			require.NoError(t, err)
			st := newState(cfg, role, f)
			for i, o := range tt.ops {
				t.Logf("step %d", i)
				o.run(t, st)
			}
		})
	}
}

func TestStateReportsMalformedOncePerRevision(t *testing.T) {
	cfg := DefaultConfig()
	st := newState(cfg, "datanode", versionFilter{})
	var reported []int64
	st.onMalformed = func(_ string, rev int64, err error) {
		require.ErrorIs(t, err, ErrMalformed)
		reported = append(reported, rev)
	}
	bad := []*mvccpb.KeyValue{kv(cfg.Key("datanode", 1), []byte("nope"), 4)}
	st.replace(bad, 10)
	st.replace(bad, 11)
	st.replace([]*mvccpb.KeyValue{kv(cfg.Key("datanode", 1), []byte("nope"), 12)}, 12)
	require.Equal(t, []int64{4, 12}, reported)
}

func TestStateCountsFiltered(t *testing.T) {
	cfg := DefaultConfig()
	f, err := parseVersionRange("~2.4")
	require.NoError(t, err)
	st := newState(cfg, "datanode", f)
	var filtered []int64
	st.onFiltered = func(s Session) { filtered = append(filtered, s.ServerID) }
	in, out := rec("datanode", 1), rec("datanode", 2)
	out.Version = "2.5.0"
	list := []*mvccpb.KeyValue{kv(cfg.Key("datanode", 1), mustEncode(t, in), 3), kv(cfg.Key("datanode", 2), mustEncode(t, out), 4)}
	evs := st.replace(list, 5)
	require.Len(t, evs, 1)
	require.Equal(t, int64(1), evs[0].Session.ServerID)
	st.replace(list, 6) // unchanged keys are not counted again
	require.Equal(t, []int64{2}, filtered)
}
