package debughttp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager"
)

func discovering() discoveringManager {
	mgr := &fakeManager{}
	mgr.set(twoNodes()...)
	return discoveringManager{fakeManager: mgr, discovery: []clientmanager.DiscoveryStatus{
		{Role: "indexnode", Revision: 40, LastSync: t0.Add(-45 * time.Second)},
		{Role: "querynode", Revision: 42, LastSync: t0.Add(-1500 * time.Millisecond)},
		{Role: "rootcoord"}, // not listed yet
	}}
}

// Each role carries its watcher's revision and last sync; a role followed
// with no node is listed too, in role order.
func TestJSONDiscovery(t *testing.T) {
	srv, _ := newServer(t, Sources{Manager: discovering()}, clockwork.NewFakeClockAt(t0))
	_, _, body := get(t, srv.URL+"/debug/clientmanager")
	var s Snapshot
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	require.Len(t, s.Roles, 3)

	in := s.Roles[0]
	require.Equal(t, "indexnode", in.Role)
	require.Empty(t, in.Nodes)
	require.Equal(t, int64(40), in.Revision)
	require.Equal(t, t0.Add(-45*time.Second), in.LastSync.UTC())
	require.Equal(t, "healthy", in.Health, "the manager judges every listed role")

	qn := s.Roles[1]
	require.Equal(t, "querynode", qn.Role)
	require.Len(t, qn.Nodes, 2)
	require.Equal(t, int64(42), qn.Revision)
	require.Equal(t, t0.Add(-1500*time.Millisecond), qn.LastSync.UTC())

	rc := s.Roles[2]
	require.Equal(t, "rootcoord", rc.Role)
	require.Len(t, rc.Nodes, 1)
	require.Zero(t, rc.Revision)
	require.Nil(t, rc.LastSync)
	require.Contains(t, body, `"revision": 0`, "a role not synced yet says so")
}

// The page shows each synced role's revision and the age of its last
// sync next to its heading.
func TestUIDiscovery(t *testing.T) {
	srv, _ := newServer(t, Sources{Manager: discovering()}, clockwork.NewFakeClockAt(t0))
	_, _, page := get(t, srv.URL+"/debug/clientmanager/ui")
	require.Contains(t, page, `<span class="sync">etcd revision 42, synced 1.5s ago</span>`)
	require.Contains(t, page, `<span class="sync">etcd revision 40, synced 45.0s ago</span>`)
	require.Contains(t, page, `<table class="nodes" data-role="indexnode">`)
	require.Equal(t, 2, strings.Count(page, `<span class="sync">`), "rootcoord, not synced, has none")
}
