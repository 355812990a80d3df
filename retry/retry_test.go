package retry

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
)

const defaultTestTimeout = 10 * time.Second

var errBoom = errors.New("boom")

// run starts Do in a goroutine and returns a channel with its result.
func run(ctx context.Context, p Policy, fn func(context.Context) error, opts ...Option) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Do(ctx, p, fn, opts...) }()
	return done
}

func waitResult(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(defaultTestTimeout):
		t.Fatal("Do did not return")
		return nil
	}
}

func TestDoFirstAttemptAtOnceAndSucceeds(t *testing.T) {
	clock := clockwork.NewFakeClock()
	calls := 0
	err := Do(context.Background(), DefaultPolicy(), func(context.Context) error { calls++; return nil }, WithClock(clock))
	require.NoError(t, err)
	require.Equal(t, 1, calls)
}

func TestDoRetriesWithBackoffAndCountsAttempts(t *testing.T) {
	clock := clockwork.NewFakeClock()
	p := DefaultPolicy()
	var waits []time.Duration
	attempts := make(chan int, 10)
	n := 0
	done := run(context.Background(), p, func(context.Context) error {
		n++
		attempts <- n
		return errBoom
	}, WithClock(clock), WithRand(func() float64 { return 0.5 }),
		OnRetry(func(_ int, _ error, w time.Duration) { waits = append(waits, w) }))

	require.Equal(t, 1, <-attempts)
	for i := 2; i <= 3; i++ {
		require.NoError(t, clock.BlockUntilContext(context.Background(), 1))
		select {
		case <-attempts:
			t.Fatal("next attempt ran before the backoff elapsed")
		default:
		}
		clock.Advance(p.Max)
		require.Equal(t, i, <-attempts)
	}
	err := waitResult(t, done)
	require.ErrorIs(t, err, errBoom)
	require.ErrorIs(t, err, ErrAttemptsExhausted)
	require.Contains(t, err.Error(), "3 attempt(s)")
	require.Equal(t, []time.Duration{p.Delay(1, 0.5), p.Delay(2, 0.5)}, waits)
}

func TestDoCancelMidSleepReturnsAtOnce(t *testing.T) {
	clock := clockwork.NewFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	p := DefaultPolicy()
	p.Initial, p.Max = time.Hour, time.Hour
	p.Jitter = 0
	done := run(ctx, p, func(context.Context) error { return errBoom }, WithClock(clock))
	require.NoError(t, clock.BlockUntilContext(context.Background(), 1)) // sleeping
	start := time.Now()
	cancel()
	err := waitResult(t, done)
	require.Less(t, time.Since(start), 10*time.Millisecond, "returns within 10 ms of cancel")
	require.ErrorIs(t, err, context.Canceled)
	var re *Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, 1, re.Attempts)
	require.ErrorIs(t, err, errBoom, "the last attempt's error is kept")
}

func TestDoNeverSleepsPastDeadline(t *testing.T) {
	start := time.Now()
	clock := clockwork.NewFakeClockAt(start)
	// The deadline is an hour of real time away, so only the fake clock moves.
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(time.Hour))
	defer cancel()
	p := DefaultPolicy()
	p.Attempts = 0 // forever, bounded only by the deadline
	p.Jitter = 0   // waits 40, 64 min
	p.Initial, p.Max = 40*time.Minute, 2*time.Hour
	attempts := make(chan int, 10)
	n := 0
	done := run(ctx, p, func(context.Context) error { n++; attempts <- n; return errBoom }, WithClock(clock))
	require.Equal(t, 1, <-attempts)
	require.NoError(t, clock.BlockUntilContext(context.Background(), 1))
	clock.Advance(40 * time.Minute)
	require.Equal(t, 2, <-attempts)
	// 20 min remain; the next wait is 64 min: Do must give up without sleeping.
	err := waitResult(t, done)
	require.ErrorIs(t, err, ErrDeadlineTooClose)
	require.ErrorIs(t, err, errBoom)
	require.NoError(t, ctx.Err(), "returned before the deadline passed")
}

func TestDoUnrecoverableStops(t *testing.T) {
	calls := 0
	err := Do(context.Background(), DefaultPolicy(), func(context.Context) error {
		calls++
		return Unrecoverable(errBoom)
	}, WithClock(clockwork.NewFakeClock()))
	require.Equal(t, 1, calls)
	require.ErrorIs(t, err, errBoom)
	require.False(t, IsUnrecoverable(err), "the mark is removed on return")
	require.Nil(t, Unrecoverable(nil))
}

func TestDoRetryIfRejects(t *testing.T) {
	calls := 0
	errOther := errors.New("other")
	err := Do(context.Background(), DefaultPolicy(), func(context.Context) error {
		calls++
		return errOther
	}, WithClock(clockwork.NewFakeClock()), RetryIf(func(err error) bool { return errors.Is(err, errBoom) }))
	require.Equal(t, 1, calls)
	require.ErrorIs(t, err, errOther)
	require.ErrorIs(t, err, ErrNotRetryable)
}

func TestDoPerAttemptTimeout(t *testing.T) {
	clock := clockwork.NewFakeClock()
	p := DefaultPolicy()
	p.Attempts = 1
	p.PerAttemptTimeout = time.Second
	done := run(context.Background(), p, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, WithClock(clock))
	require.NoError(t, clock.BlockUntilContext(context.Background(), 1))
	clock.Advance(time.Second)
	err := waitResult(t, done)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestDoInvalidPolicy(t *testing.T) {
	err := Do(context.Background(), Policy{}, func(context.Context) error { return nil })
	require.ErrorContains(t, err, "Backoff.Initial")
}
