package session

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSubscriberCoalescing(t *testing.T) {
	a := rec("querynode", 1)
	a2 := a
	a2.Stopping = true
	a3 := a
	a3.LeaseID = 777
	b := rec("querynode", 2)
	ev := func(typ EventType, s Session, rev int64) Event { return Event{Type: typ, Session: s, Revision: rev} }

	tests := []struct {
		name string
		sent []int64 // processes the subscriber was sent before
		push []Event // pending changes, in order
		want []Event
	}{
		{name: "add then update is one add with the latest record",
			push: []Event{ev(EventAdd, a, 5), ev(EventUpdate, a2, 6)},
			want: []Event{ev(EventAdd, a2, 6)}},
		{name: "add then del of an unseen process is nothing",
			push: []Event{ev(EventAdd, a, 5), ev(EventDel, a, 6)}},
		{name: "del then add of a seen process is an update with the new record",
			sent: []int64{1},
			push: []Event{ev(EventDel, a, 5), ev(EventAdd, a3, 6)},
			want: []Event{ev(EventUpdate, a3, 6)}},
		{name: "update then del of a seen process is a del",
			sent: []int64{1},
			push: []Event{ev(EventUpdate, a2, 5), ev(EventDel, a2, 6)},
			want: []Event{ev(EventDel, a2, 6)}},
		{name: "processes in the order of their latest change",
			push: []Event{ev(EventAdd, a, 5), ev(EventAdd, b, 6), ev(EventUpdate, a2, 7)},
			want: []Event{ev(EventAdd, b, 6), ev(EventAdd, a2, 7)}},
		{name: "del of a process sent before",
			sent: []int64{2},
			push: []Event{ev(EventDel, b, 9)},
			want: []Event{ev(EventDel, b, 9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSubscriber(0)
			sent := make(map[int64]struct{})
			for _, id := range tt.sent {
				sent[id] = struct{}{}
			}
			for _, e := range tt.push {
				s.push(e)
			}
			var got []Event
			for _, e := range s.q.Take(nil) {
				if e, ok := resolve(e, sent); ok {
					got = append(got, e)
				}
			}
			require.Len(t, got, len(tt.want), "%+v", got)
			for i := range got {
				require.Equal(t, tt.want[i].Type, got[i].Type, "event %d", i)
				require.Equal(t, tt.want[i].Revision, got[i].Revision, "event %d", i)
				require.True(t, sameRecord(tt.want[i].Session, got[i].Session), "event %d", i)
			}
			require.Empty(t, s.q.Take(nil), "take must empty the queue")
		})
	}
}

func TestSubscriberQueueStaysBounded(t *testing.T) {
	s := newSubscriber(0)
	for i := range 100_000 {
		s.push(Event{Type: EventUpdate, Session: rec("querynode", int64(i%3+1)), Revision: int64(i)})
	}
	require.Equal(t, 3, s.q.Len())
	require.Len(t, s.q.Take(nil), 3)
}

func TestHubNewSubscriberGetsSnapshotFirst(t *testing.T) {
	h := newHub(64)
	defer h.close()
	h.publish([]Event{
		{Type: EventAdd, Session: rec("querynode", 3), Revision: 4},
		{Type: EventAdd, Session: rec("querynode", 1), Revision: 5},
		{Type: EventAdd, Session: rec("querynode", 2), Revision: 6},
		{Type: EventDel, Session: rec("querynode", 2), Revision: 7},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.subscribe(ctx)
	first, second := next(t, ch), next(t, ch)
	require.Equal(t, EventAdd, first.Type)
	require.Equal(t, int64(3), first.Session.ServerID, "the snapshot is in revision order")
	require.Equal(t, int64(4), first.Revision)
	require.Equal(t, EventAdd, second.Type)
	require.Equal(t, int64(1), second.Session.ServerID)
	require.Equal(t, int64(5), second.Revision)

	h.publish([]Event{{Type: EventDel, Session: rec("querynode", 3), Revision: 8}})
	third := next(t, ch)
	require.Equal(t, EventDel, third.Type)
	require.Equal(t, int64(3), third.Session.ServerID)
	require.Equal(t, []int64{1}, ids(h.sessions()))
}

func TestHubSlowSubscriberDoesNotDelayFastOne(t *testing.T) {
	h := newHub(1)
	defer h.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := h.subscribe(ctx) // never read
	fast := h.subscribe(ctx)
	const n = 1000
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 1; i <= n; i++ {
			s := rec("querynode", int64(i%10+1))
			s.LeaseID = int64(i)
			typ := EventUpdate
			if i <= 10 {
				typ = EventAdd
			}
			h.publish([]Event{{Type: typ, Session: s, Revision: int64(i)}})
		}
	}()
	select {
	case <-published:
	case <-time.After(waitFor):
		t.Fatal("publish blocked on a subscriber that does not read")
	}
	v := newView(t)
	for v.rev[int64(n%10+1)] != n {
		v.apply(next(t, fast))
	}
	require.Len(t, v.seen, 10)
	for id, s := range v.seen {
		want := 990 + id - 1
		if id == 1 {
			want = n
		}
		require.Equal(t, want, s.LeaseID, "process %d: the latest record", id)
	}
	require.Eventually(t, func() bool { return len(slow) == 1 }, waitFor, time.Millisecond,
		"the slow subscriber's channel holds its buffer")
	h.mu.Lock()
	for s := range h.subs {
		require.LessOrEqual(t, s.q.Len(), 10, "pending changes coalesce per process")
	}
	h.mu.Unlock()
}

func TestHubManySubscribersConvergeToFinalState(t *testing.T) {
	const subs, changes, procs = 100, 1000, 50
	const sentinel = int64(1) << 40
	h := newHub(8)
	defer h.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	views := make([]*view, subs)
	var wg sync.WaitGroup
	for i := range subs {
		ch := h.subscribe(ctx)
		v := newView(t)
		views[i] = v
		wg.Add(1)
		go func(slow bool) {
			defer wg.Done()
			for ev := range ch {
				if ev.Session.ServerID == sentinel {
					return
				}
				v.apply(ev)
				if slow {
					for range 100 {
						runtime.Gosched() // a slow reader
					}
				}
			}
		}(i%10 == 0)
	}

	rnd := rand.New(rand.NewPCG(1, 2))
	live := make(map[int64]Session)
	for rev := int64(1); rev <= changes; rev++ {
		id := rnd.Int64N(procs) + 1
		s := rec("querynode", id)
		s.LeaseID = rev
		old, ok := live[id]
		var ev Event
		switch {
		case !ok:
			live[id] = s
			ev = Event{Type: EventAdd, Session: s, Revision: rev}
		case rnd.IntN(3) == 0:
			delete(live, id)
			ev = Event{Type: EventDel, Session: old, Revision: rev}
		default:
			live[id] = s
			ev = Event{Type: EventUpdate, Session: s, Revision: rev}
		}
		h.publish([]Event{ev})
	}
	h.publish([]Event{{Type: EventAdd, Session: rec("querynode", sentinel), Revision: changes + 1}})

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("subscribers did not drain")
	}
	for i, v := range views {
		require.Len(t, v.seen, len(live), "subscriber %d", i)
		for id, s := range live {
			require.True(t, sameRecord(s, v.seen[id]), "subscriber %d, process %d", i, id)
		}
	}
}

func TestHubCloseAndContextEndCloseChannels(t *testing.T) {
	h := newHub(4)
	ctx, cancel := context.WithCancel(context.Background())
	byCtx := h.subscribe(ctx)
	byClose := h.subscribe(context.Background())
	h.publish([]Event{{Type: EventAdd, Session: rec("querynode", 1), Revision: 2}})
	require.Equal(t, EventAdd, next(t, byCtx).Type)

	cancel()
	requireClosed(t, byCtx)
	h.close()
	h.close()
	requireClosed(t, byClose)
	requireClosed(t, h.subscribe(context.Background()))
	h.publish([]Event{{Type: EventAdd, Session: rec("querynode", 2), Revision: 3}}) // no effect, no panic

	ended, cancelEnded := context.WithCancel(context.Background())
	cancelEnded()
	h2 := newHub(4)
	defer h2.close()
	requireClosed(t, h2.subscribe(ended))
}

// requireClosed drains ch and fails unless it is closed within waitFor.
func requireClosed(t testing.TB, ch <-chan Event) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed")
		}
	}
}
