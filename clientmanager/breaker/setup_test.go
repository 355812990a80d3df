package breaker

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
)

// defaultTestTimeout bounds every wait in the tests.
const defaultTestTimeout = 10 * time.Second

// newTestBreaker returns a breaker on a fake clock with zero jitter.
func newTestBreaker(t *testing.T, cfg Config, opts ...Option) (*Breaker, *clockwork.FakeClock) {
	t.Helper()
	clk := clockwork.NewFakeClock()
	opts = append([]Option{WithClock(clk), WithRand(func() float64 { return 0 })}, opts...)
	b, err := New(cfg, opts...)
	require.NoError(t, err)
	return b, clk
}

// call runs one admitted call with outcome o; it fails the test if the
// breaker refuses.
func call(t *testing.T, b *Breaker, o Outcome) {
	t.Helper()
	tok, err := b.Allow()
	require.NoError(t, err)
	b.Record(tok, o)
}

// calls runs n admitted calls with outcome o.
func calls(t *testing.T, b *Breaker, n int, o Outcome) {
	t.Helper()
	for range n {
		call(t, b, o)
	}
}

// trip opens a closed breaker with consecutive failures.
func trip(t *testing.T, b *Breaker) {
	t.Helper()
	calls(t, b, b.cfg.ConsecutiveFailures, Failure)
	require.Equal(t, StateOpen, b.State())
}

// toHalfOpen moves an open breaker past its break.
func toHalfOpen(t *testing.T, b *Breaker, clk *clockwork.FakeClock) {
	t.Helper()
	clk.Advance(b.Snapshot().BreakDuration)
	require.Equal(t, StateHalfOpen, b.State())
}

// probes takes n probe permits.
func probes(t *testing.T, b *Breaker, n int) []Token {
	t.Helper()
	toks := make([]Token, n)
	for i := range toks {
		tok, err := b.Allow()
		require.NoError(t, err)
		require.True(t, tok.Probe())
		toks[i] = tok
	}
	return toks
}
