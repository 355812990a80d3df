package bulkhead

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const defaultTestTimeout = 10 * time.Second

func newTestBulkhead(t testing.TB, maxConcurrent, maxQueue int, maxWait time.Duration, opts ...Option) *Bulkhead {
	t.Helper()
	b, err := New(Config{MaxConcurrent: maxConcurrent, MaxQueue: maxQueue, MaxWait: maxWait}, opts...)
	require.NoError(t, err)
	return b
}

type result struct {
	id  int
	p   Permit
	err error
}

// goAcquire runs Acquire in a goroutine and delivers its outcome on out.
// out must be buffered or read, so the goroutine always ends.
func goAcquire(ctx context.Context, b *Bulkhead, id int, out chan<- result) {
	go func() {
		p, err := b.Acquire(ctx)
		out <- result{id: id, p: p, err: err}
	}()
}

// spinUntil yields until cond holds, failing the test after
// defaultTestTimeout. It polls without sleeping so that tight loops of
// many iterations stay fast.
func spinUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		runtime.Gosched()
	}
}

func receive(t testing.TB, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(defaultTestTimeout):
		t.Fatal("timed out waiting for an Acquire to return")
		return result{}
	}
}

// requireFullyFree asserts that nothing is held or queued and that every
// slot can be taken again, i.e. no slot leaked.
func requireFullyFree(t testing.TB, b *Bulkhead) {
	t.Helper()
	require.Equal(t, 0, b.InFlight(), "in flight")
	require.Equal(t, 0, b.Queued(), "queued")
	permits := make([]Permit, 0, b.maxConcurrent)
	for i := 0; i < int(b.maxConcurrent); i++ {
		p, ok := b.TryAcquire()
		require.True(t, ok, "slot %d of %d must be free", i, b.maxConcurrent)
		permits = append(permits, p)
	}
	_, ok := b.TryAcquire()
	require.False(t, ok, "more slots than MaxConcurrent")
	for _, p := range permits {
		p.Release()
	}
	require.Equal(t, 0, b.InFlight())
}
