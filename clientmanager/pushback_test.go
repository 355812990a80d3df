package clientmanager

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestParsePushback(t *testing.T) {
	for _, tc := range []struct {
		md   metadata.MD
		want int64
	}{
		{nil, noPushback},
		{metadata.Pairs("other", "1"), noPushback},
		{metadata.Pairs(PushbackTrailer, "50"), 50},
		{metadata.Pairs(PushbackTrailer, "0"), 0},
		{metadata.Pairs(PushbackTrailer, "-1"), stopPushback},
		{metadata.Pairs(PushbackTrailer, "-1000"), stopPushback},
		{metadata.Pairs(PushbackTrailer, "soon"), stopPushback},
		{metadata.Pairs(PushbackTrailer, "1.5"), stopPushback},
		{metadata.Pairs(PushbackTrailer, ""), stopPushback},
		{metadata.Pairs(PushbackTrailer, "1", PushbackTrailer, "2"), stopPushback},
	} {
		t.Run(tc.md.String(), func(t *testing.T) {
			require.Equal(t, tc.want, parsePushback(tc.md))
		})
	}
}

// arrivals returns when the servers received their Unary calls, in order.
func arrivals(srvs []*testServer) []time.Time {
	var at []time.Time
	for _, s := range srvs {
		s.svc.mu.Lock()
		at = append(at, s.svc.at...)
		s.svc.at = nil
		s.svc.mu.Unlock()
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	return at
}

func TestInvokeHonoursRetryPushback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noBreaker)
	srvs := e.replicas(2)
	setPushback := func(v string) {
		for _, s := range srvs {
			s.svc.code.Store(uint32(codes.Unavailable))
			s.svc.pushback.Store(&v)
			s.svc.calls.Store(0)
		}
		arrivals(srvs)
	}

	t.Run("wait", func(t *testing.T) {
		setPushback("50")
		err := e.m.Invoke(context.Background(), testRole, callUnary, Idempotent())
		require.Equal(t, codes.Unavailable, status.Code(err))
		at := arrivals(srvs)
		require.Len(t, at, 3, "every attempt made")
		for i := 1; i < len(at); i++ {
			require.GreaterOrEqual(t, at[i].Sub(at[i-1]), 50*time.Millisecond, "retry %d waited the pushback", i)
		}
		require.Equal(t, 2.0, metricValue(t, e.m.metrics.pushbackWaits.WithLabelValues(testRole)))
	})

	t.Run("zero", func(t *testing.T) {
		setPushback("0")
		require.Equal(t, codes.Unavailable, status.Code(e.m.Invoke(context.Background(), testRole, callUnary, Idempotent())))
		require.Equal(t, int64(3), totalCalls(srvs))
	})

	for i, v := range []string{"-1", "later"} {
		t.Run("stop "+v, func(t *testing.T) {
			setPushback(v)
			err := e.m.Invoke(context.Background(), testRole, callUnary, Idempotent())
			require.Equal(t, codes.Unavailable, status.Code(err))
			require.Equal(t, int64(1), totalCalls(srvs), "not retried")
			require.Equal(t, float64(i+1), metricValue(t, e.m.metrics.pushbackStops.WithLabelValues(testRole)))
		})
	}

	t.Run("past the deadline", func(t *testing.T) {
		setPushback("60000")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		err := e.m.Invoke(ctx, testRole, callUnary, Idempotent())
		require.Less(t, time.Since(start), time.Second, "no wait that cannot end before the deadline")
		require.Equal(t, codes.Unavailable, status.Code(err), "the last attempt's error")
		require.Equal(t, int64(1), totalCalls(srvs))
	})
}
