package clientmanager

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetryBudgetBoundsAttemptsUnderTotalFailure(t *testing.T) {
	t.Parallel()
	for _, b := range []RetryBudget{
		DefaultRetryBudget(),
		{Ratio: 0.5, MinPerSecond: 1, Window: DefaultRetryBudget().Window},
		{Ratio: 0, MinPerSecond: 0, Window: DefaultRetryBudget().Window},
	} {
		t.Run("", func(t *testing.T) {
			clock := clockwork.NewFakeClock() // still: every call falls in one window
			var attempts atomic.Int64
			m, _ := unitManager(t, clock, 3, func(c *Config) {
				noBreaker(c) // the budget alone bounds the retries
				c.RetryBudget = b
			}, func(context.Context, int64) error {
				attempts.Add(1)
				return status.Error(codes.Unavailable, "down")
			})
			const calls = 1000
			for range calls {
				err := m.Invoke(context.Background(), testRole, callUnary, Idempotent())
				require.Equal(t, codes.Unavailable, status.Code(err), "the last error, retried or not")
			}
			floor := b.MinPerSecond * b.Window.Seconds()
			bound := calls*(1+b.Ratio) + floor
			require.LessOrEqual(t, float64(attempts.Load()), bound)
			require.GreaterOrEqual(t, float64(attempts.Load()), bound-1, "the budget is spent, not hoarded")
			exhausted := metricValue(t, m.metrics.budgetExhausted.WithLabelValues(testRole))
			require.Positive(t, exhausted)
			require.LessOrEqual(t, exhausted, float64(calls), "once per call at most: it returns then")
		})
	}
}

func TestRetryBudgetRefillsAsTheWindowSlides(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	var attempts atomic.Int64
	m, _ := unitManager(t, clock, 3, func(c *Config) {
		noBreaker(c)
		c.RetryBudget = RetryBudget{Ratio: 0, MinPerSecond: 1, Window: DefaultRetryBudget().Window} // 10 retries per window
	}, func(context.Context, int64) error {
		attempts.Add(1)
		return status.Error(codes.Unavailable, "down")
	})
	invoke := func() int64 {
		attempts.Store(0)
		_ = m.Invoke(context.Background(), testRole, callUnary, Idempotent())
		return attempts.Load()
	}
	for range 5 {
		require.Equal(t, int64(3), invoke(), "two retries each, 10 in all")
	}
	require.Equal(t, int64(1), invoke(), "budget spent")
	clock.Advance(m.cfg.RetryBudget.Window / 2)
	require.Equal(t, int64(1), invoke(), "the retries are still in the window")
	clock.Advance(m.cfg.RetryBudget.Window / 2)
	require.Equal(t, int64(3), invoke(), "they left it")
}

func TestRetryBudgetCountsOnlyRetries(t *testing.T) {
	t.Parallel()
	b := newRetryBudget(RetryBudget{Ratio: 0.5, MinPerSecond: 0, Window: DefaultRetryBudget().Window}, clockwork.NewFakeClock())
	require.False(t, b.withdraw(), "no call, no floor: no retry")
	for range 4 {
		b.deposit()
	}
	require.True(t, b.withdraw())
	require.True(t, b.withdraw())
	require.False(t, b.withdraw(), "half of 4 calls")
}
