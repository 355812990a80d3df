package coalesce

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTakeCoalescesToLatestInOrderOfLastChange(t *testing.T) {
	q := New[string]()
	q.Push(1, "a1")
	q.Push(2, "b1")
	q.Push(1, "a2")
	q.Push(3, "c1")
	require.Equal(t, []string{"b1", "a2", "c1"}, q.Take(nil))
	require.Empty(t, q.Take(nil), "Take empties the queue")
}

func TestOrderStaysBoundedUnderChurn(t *testing.T) {
	q := New[int]()
	for i := 0; i < 10000; i++ {
		q.Push(int64(i%3), i)
	}
	q.mu.Lock()
	n := len(q.order)
	q.mu.Unlock()
	require.LessOrEqual(t, n, 2*3+16+1, "stale tickets are compacted")
	require.Equal(t, []int{9997, 9998, 9999}, q.Take(nil))
}

func TestDrainDeliversFiltersAndStops(t *testing.T) {
	q := New[int]()
	out := make(chan int)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(out)
		Drain(ctx, nil, q, out, func(v int) (int, bool) { return v * 10, v%2 == 1 })
	}()
	for i := 1; i <= 4; i++ {
		q.Push(int64(i), i)
	}
	var got []int
	for len(got) < 2 {
		select {
		case v := <-out:
			got = append(got, v)
		case <-time.After(10 * time.Second):
			t.Fatal("nothing delivered")
		}
	}
	require.Equal(t, []int{10, 30}, got, "even values dropped by next")
	cancel()
	wg.Wait()
	_, open := <-out
	require.False(t, open)
}

func TestPushNeverBlocksOnASlowReader(t *testing.T) {
	q := New[int]()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100000; i++ {
			q.Push(int64(i%100), i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Push blocked with nobody reading")
	}
	require.Len(t, q.Take(nil), 100)
}
