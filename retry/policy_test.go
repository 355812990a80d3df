package retry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Policy)
		field string
	}{
		{"initial zero", func(p *Policy) { p.InitialBackoff = 0 }, "InitialBackoff"},
		{"max below initial", func(p *Policy) { p.MaxBackoff = time.Millisecond }, "MaxBackoff"},
		{"multiplier below one", func(p *Policy) { p.Multiplier = 0.5 }, "Multiplier"},
		{"jitter above one", func(p *Policy) { p.Jitter = 1.5 }, "Jitter"},
		{"negative attempt timeout", func(p *Policy) { p.PerAttemptTimeout = -1 }, "PerAttemptTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			tc.edit(&p)
			err := p.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.field)
		})
	}
	require.NoError(t, DefaultPolicy().Validate())
}

func TestBackoffBounds(t *testing.T) {
	p := DefaultPolicy()
	for n := 1; n <= 40; n++ {
		bound := p.Bound(n)
		require.LessOrEqual(t, bound, p.MaxBackoff, "attempt %d", n)
		require.GreaterOrEqual(t, bound, p.InitialBackoff, "attempt %d", n)
		require.Equal(t, time.Duration(0), p.Backoff(n, 0), "full jitter starts at zero")
		hi := p.Backoff(n, 0.999999)
		require.LessOrEqual(t, hi, bound)
		require.Greater(t, hi, bound*99/100)
		require.Equal(t, p.Backoff(n, 0.3), p.Backoff(n, 0.3), "pure function")
	}
	require.Equal(t, 100*time.Millisecond, p.Bound(1))
	require.Equal(t, 160*time.Millisecond, p.Bound(2))
	require.Equal(t, 256*time.Millisecond, p.Bound(3))
	require.Equal(t, 3*time.Second, p.Bound(1000), "capped, no overflow")
	require.InDelta(t, float64(p.MaxBackoff), float64(p.Backoff(1000, 2)), float64(time.Microsecond), "r is clamped below 1")

	p.Jitter = 0
	require.Equal(t, p.Bound(2), p.Backoff(2, 0.7), "no jitter waits the bound")
	p.Jitter = 0.5
	require.Equal(t, p.Bound(2)/2, p.Backoff(2, 0))
}
