package startup

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const testTimeout = 20 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// subscribeTo runs a subscriber of m the way Runner.Subscribe does.
func subscribeTo(t testing.TB, m *machine, ctx context.Context, done <-chan struct{}) <-chan Transition {
	t.Helper()
	out := make(chan Transition)
	sub := newSubscriber()
	m.attach(sub)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer close(out)
		defer m.detach(sub)
		sub.pump(ctx, done, out)
	}()
	t.Cleanup(func() { <-finished })
	return out
}

func TestMachineObservesEveryChange(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	clock := clockwork.NewFakeClock()
	m := newMachine(zap.New(core), clock)
	ctx := testCtx(t)
	sub := subscribeTo(t, m, ctx, nil)

	path := []State{StateWaitingDependencies, StateStarting, StateRegistering, StateHealthy,
		StateAbnormal, StateHealthy, StateStopping, StateStopped}
	// The subscriber reads nothing until every change is made: a slow
	// reader must not block the machine, nor lose or reorder changes.
	for i, s := range path {
		clock.Advance(time.Second)
		tr, err := m.transition(s, "step")
		require.NoError(t, err)
		require.Equal(t, s, tr.To)
		require.Equal(t, clock.Now(), tr.At)
		require.Equal(t, s, m.current(), "step %d", i)
	}

	first := <-sub
	require.Equal(t, Transition{From: StateInitializing, To: StateInitializing, At: first.At, Reason: "created"}, first)
	from := StateInitializing
	for _, s := range path {
		tr, ok := <-sub
		require.True(t, ok)
		require.Equal(t, from, tr.From)
		require.Equal(t, s, tr.To)
		from = s
	}
	_, ok := <-sub
	require.False(t, ok, "the subscription ends after Stopped")

	entries := logs.FilterMessage("state changed").All()
	require.Len(t, entries, len(path), "one log line per change")
	require.Equal(t, "Abnormal", entries[4].ContextMap()["to"])
	require.Equal(t, zapcore.WarnLevel, entries[4].Level)
}

func TestMachineSubscribeAfterStopDeliversLast(t *testing.T) {
	m := machineIn(t, StateStopped)
	sub := subscribeTo(t, m, testCtx(t), nil)
	tr := <-sub
	require.Equal(t, StateStopping, tr.From)
	require.Equal(t, StateStopped, tr.To)
	_, ok := <-sub
	require.False(t, ok)
}

func TestMachineSubscriptionEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(cancel context.CancelFunc, done chan struct{})
	}{
		{"context", func(cancel context.CancelFunc, _ chan struct{}) { cancel() }},
		{"close", func(_ context.CancelFunc, done chan struct{}) { close(done) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := machineIn(t, StateHealthy)
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			done := make(chan struct{})
			sub := subscribeTo(t, m, ctx, done)
			require.Equal(t, StateHealthy, (<-sub).To)
			_, err := m.transition(StateAbnormal, "queued, never read")
			require.NoError(t, err)
			tc.end(cancel, done)
			require.Eventually(t, func() bool {
				select {
				case _, ok := <-sub:
					return !ok
				default:
					return false
				}
			}, testTimeout, time.Millisecond, "the channel closes although a change was queued")
			m.mu.Lock()
			n := len(m.subs)
			m.mu.Unlock()
			require.Zero(t, n, "the subscriber is detached")
		})
	}
}

func TestMachineWaitFor(t *testing.T) {
	t.Run("current", func(t *testing.T) {
		m := machineIn(t, StateHealthy)
		require.NoError(t, m.waitFor(testCtx(t), StateHealthy))
	})
	t.Run("passed through later", func(t *testing.T) {
		m := machineIn(t, StateInitializing)
		errc := make(chan error, 1)
		go func() { errc <- m.waitFor(testCtx(t), StateStarting) }()
		require.Eventually(t, func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.waiters[StateStarting]) == 1
		}, testTimeout, time.Millisecond)
		for _, s := range []State{StateWaitingDependencies, StateStarting, StateRegistering} {
			_, err := m.transition(s, "test")
			require.NoError(t, err)
		}
		require.NoError(t, <-errc, "a state passed through counts")
	})
	t.Run("stopped elsewhere", func(t *testing.T) {
		m := machineIn(t, StateHealthy)
		errc := make(chan error, 1)
		go func() { errc <- m.waitFor(testCtx(t), StateStandBy) }()
		require.Eventually(t, func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.waiters[StateStandBy]) == 1
		}, testTimeout, time.Millisecond)
		for _, s := range []State{StateStopping, StateStopped} {
			_, err := m.transition(s, "test")
			require.NoError(t, err)
		}
		require.ErrorIs(t, <-errc, ErrStopped)
		require.ErrorIs(t, m.waitFor(testCtx(t), StateHealthy), ErrStopped)
		require.NoError(t, m.waitFor(testCtx(t), StateStopped))
	})
	t.Run("context", func(t *testing.T) {
		m := machineIn(t, StateInitializing)
		ctx, cancel := context.WithCancel(testCtx(t))
		cancel()
		require.ErrorIs(t, m.waitFor(ctx, StateHealthy), context.Canceled)
		m.mu.Lock()
		defer m.mu.Unlock()
		require.Empty(t, m.waiters, "an abandoned waiter is removed")
	})
}
