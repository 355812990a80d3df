package clientmanager

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A node that comes online is published at once unless a storm is going
// on: while other nodes stand suspect (a standby, a crashed process whose
// lease lives), a new node of a large role is not held back for them when
// no batch was published lately; right after a publication, with others
// being dialed, it waits for them to join its batch, at most the delay for
// the role's size. A node that leaves is always published at once.
func TestRegistryPublishesANewNodeAtOnceOutsideAStorm(t *testing.T) {
	t.Parallel()
	now := time.Now()
	r := &registry{nodes: map[int64]*Client{}, settling: 1} // one other node suspect
	for id := range int64(100) {
		r.nodes[id] = nil
	}
	online := &batch{changes: []change{{id: 200, ev: ClientEvent{Type: ClientOnline}}}}
	wantDelay := min(max(100*batchDelayPerNode, minBatchDelay), maxBatchDelay)

	r.lastPublished = now.Add(-time.Hour)
	ready, delay := r.readyLocked(online, true, now)
	require.True(t, ready, "a node online in a quiet registry waited")
	require.Equal(t, wantDelay, delay)

	r.lastPublished = now.Add(-wantDelay / 2)
	ready, _ = r.readyLocked(online, true, now)
	require.False(t, ready, "a node online during a storm did not wait for others")
	ready, _ = r.readyLocked(online, false, now.Add(wantDelay))
	require.False(t, ready, "the leader's own wait made it quiet")

	r.settling = 0
	ready, _ = r.readyLocked(online, true, now)
	require.True(t, ready, "nothing being dialed, yet it waited")

	r.settling = 1
	offline := &batch{changes: []change{{id: 3, ev: ClientEvent{Type: ClientOffline}}}, urgent: true}
	ready, _ = r.readyLocked(offline, true, now)
	require.True(t, ready, "a node leaving waited")
}
