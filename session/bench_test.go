package session

import (
	"context"
	"strconv"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// BenchmarkWatcherFanOut delivers one change to N subscribers through the
// in-memory path the watch loop feeds: publish, then every subscriber
// receives it.
func BenchmarkWatcherFanOut(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run("subscribers="+strconv.Itoa(n), func(b *testing.B) {
			h := newHub(64)
			defer h.close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := rec("querynode", 1)
			h.publish([]Event{{Type: EventAdd, Session: s, Revision: 1}})
			chans := make([]<-chan Event, n)
			for i := range chans {
				chans[i] = h.subscribe(ctx)
				<-chans[i] // the snapshot
			}
			evs := make([]Event, 1)
			b.ReportAllocs()
			rev := int64(1)
			for b.Loop() {
				rev++
				evs[0] = Event{Type: EventUpdate, Session: s, Revision: rev}
				h.publish(evs)
				for _, ch := range chans {
					if ev := <-ch; ev.Revision != rev {
						b.Fatalf("got revision %d, want %d", ev.Revision, rev)
					}
				}
			}
		})
	}
}

// BenchmarkWatchEventApply measures one watch event through the known set:
// decode, key bookkeeping and the diff that makes the event.
func BenchmarkWatchEventApply(b *testing.B) {
	cfg := DefaultConfig()
	st := newState(cfg, "querynode", versionFilter{})
	s := rec("querynode", 1)
	val, err := s.Encode()
	if err != nil {
		b.Fatal(err)
	}
	ev := &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(cfg.Key("querynode", 1)), Value: val}}
	b.ReportAllocs()
	rev := int64(0)
	for b.Loop() {
		rev++
		ev.Kv.ModRevision = rev
		st.applyEvent(ev)
		st.flush(rev)
	}
}

// BenchmarkWatcherSessions measures the copy of the visible set (100
// sessions) that Sessions returns.
func BenchmarkWatcherSessions(b *testing.B) {
	h := newHub(64)
	defer h.close()
	evs := make([]Event, 100)
	for i := range evs {
		evs[i] = Event{Type: EventAdd, Session: rec("querynode", int64(i+1)), Revision: int64(i + 1)}
	}
	h.publish(evs)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(h.sessions()) != 100 {
				b.Fatal("wrong set")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if len(h.sessions()) != 100 {
					b.Error("wrong set")
					return
				}
			}
		})
	})
}
