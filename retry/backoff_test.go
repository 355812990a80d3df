package retry

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Backoff)
		field string
	}{
		{"initial zero", func(b *Backoff) { b.Initial = 0 }, "Backoff.Initial (0s)"},
		{"max below initial", func(b *Backoff) { b.Max = time.Millisecond }, "Backoff.Max (1ms)"},
		{"multiplier below one", func(b *Backoff) { b.Multiplier = 0.5 }, "Backoff.Multiplier (0.5)"},
		{"multiplier infinite", func(b *Backoff) { b.Multiplier = math.Inf(1) }, "Backoff.Multiplier"},
		{"jitter above one", func(b *Backoff) { b.Jitter = 1.5 }, "Backoff.Jitter (1.5)"},
		{"jitter NaN", func(b *Backoff) { b.Jitter = math.NaN() }, "Backoff.Jitter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := DefaultBackoff()
			tc.edit(&b)
			err := b.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), "retry: "+tc.field)
		})
	}
	require.NoError(t, DefaultBackoff().Validate())
}

func TestDefaultBackoff(t *testing.T) {
	require.Equal(t, Backoff{Initial: 100 * time.Millisecond, Max: 3 * time.Second, Multiplier: 1.6, Jitter: 1}, DefaultBackoff())
}

func TestBackoffBounds(t *testing.T) {
	b := DefaultBackoff()
	for n := 1; n <= 40; n++ {
		bound := b.Bound(n)
		require.LessOrEqual(t, bound, b.Max, "attempt %d", n)
		require.GreaterOrEqual(t, bound, b.Initial, "attempt %d", n)
		require.Equal(t, time.Duration(0), b.Delay(n, 0), "full jitter starts at zero")
		hi := b.Delay(n, 0.999999)
		require.LessOrEqual(t, hi, bound)
		require.Greater(t, hi, bound*99/100)
		require.Equal(t, b.Delay(n, 0.3), b.Delay(n, 0.3), "pure function")
	}
	require.Equal(t, 100*time.Millisecond, b.Bound(0), "attempts below 1 count as the first")
	require.Equal(t, 100*time.Millisecond, b.Bound(1))
	require.Equal(t, 160*time.Millisecond, b.Bound(2))
	require.Equal(t, 256*time.Millisecond, b.Bound(3))
	require.Equal(t, 3*time.Second, b.Bound(1000), "capped, no overflow")
	require.InDelta(t, float64(b.Max), float64(b.Delay(1000, 2)), float64(time.Microsecond), "r is clamped below 1")
	require.Equal(t, time.Duration(0), b.Delay(3, -1), "r is clamped at 0")

	b.Jitter = 0
	require.Equal(t, b.Bound(2), b.Delay(2, 0.7), "no jitter waits the bound")
	b.Jitter = 0.5
	require.Equal(t, b.Bound(2)/2, b.Delay(2, 0))
}
