package ewma

import (
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestObserve(t *testing.T) {
	var e EWMA
	require.True(t, e.Empty())
	require.Zero(t, e.Value())

	e.Observe(100, 0.2)
	require.False(t, e.Empty())
	require.Equal(t, 100.0, e.Value(), "the first sample is taken as it is")

	e.Observe(200, 0.2)
	require.InDelta(t, 0.2*200+0.8*100, e.Value(), 1e-9)

	e.Set(10)
	require.Equal(t, 10.0, e.Value(), "Set drops the history")
	e.Observe(20, 0.5)
	require.InDelta(t, 15.0, e.Value(), 1e-9)
}

// A sample of zero is a sample: the next one is blended with it, not
// taken as the first.
func TestZeroIsASample(t *testing.T) {
	var e EWMA
	e.Observe(0, 0.25)
	require.False(t, e.Empty())
	require.Zero(t, e.Value())
	require.False(t, math.Signbit(e.Value()), "Value never returns -0")
	e.Observe(100, 0.25)
	require.InDelta(t, 25.0, e.Value(), 1e-9)

	var s EWMA
	s.Set(0)
	require.False(t, s.Empty())
	s.Observe(8, 0.5)
	require.InDelta(t, 4.0, s.Value(), 1e-9)
}

// Concurrent updates of a constant sample lose none of them: the average
// of a constant is that constant, whatever the interleaving.
func TestConcurrentObserve(t *testing.T) {
	var e EWMA
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				e.Observe(42, 0.3)
			}
		}()
	}
	wg.Wait()
	require.InDelta(t, 42.0, e.Value(), 1e-9)
}

func BenchmarkObserve(b *testing.B) {
	var e EWMA
	b.ReportAllocs()
	for b.Loop() {
		e.Observe(1000, 0.2)
	}
}
