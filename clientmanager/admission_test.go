package clientmanager

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/clientmanager/bulkhead"
)

// holder makes node 1's calls block until released while hold is set.
type holder struct {
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
	hits    nodeSet
}

func newHolder() *holder {
	h := &holder{entered: make(chan struct{}, 16), release: make(chan struct{})}
	h.hold.Store(true)
	return h
}

func (h *holder) answer(_ context.Context, id int64) error {
	h.hits.add(id)
	if id == 1 && h.hold.Load() {
		h.entered <- struct{}{}
		<-h.release
	}
	return nil
}

// occupy starts a call on node 1 that holds its only bulkhead slot.
func (h *holder) occupy(t *testing.T, m *Manager) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- m.InvokeNode(context.Background(), 1, callUnary) }()
	select {
	case <-h.entered:
	case <-time.After(testTimeout):
		t.Fatal("the call did not reach node 1")
	}
	return done
}

func oneSlot(c *Config) {
	c.Bulkhead = bulkhead.Config{MaxConcurrent: 1, MaxQueue: 0}
	c.Balancer.Policy = balancer.PolicyRoundRobin // node 1 comes up every other pick
}

func TestInvokeGoesElsewhereWhenBulkheadIsFull(t *testing.T) {
	t.Parallel()
	h := newHolder()
	m, clients := unitManager(t, clockwork.NewFakeClock(), 2, oneSlot, h.answer)
	done := h.occupy(t, m)

	for range 20 {
		require.NoError(t, m.Invoke(context.Background(), testRole, callUnary))
	}
	require.Equal(t, 1, h.hits.count(1), "node 1 took only the call that holds it")
	require.Equal(t, 20, h.hits.count(2))
	require.GreaterOrEqual(t, metricValue(t, m.metrics.bulkheadRejections.WithLabelValues(testRole)), 5.0)
	require.Equal(t, 20.0, metricValue(t, m.metrics.attempts.WithLabelValues(testRole))-1, "a refusal is not an attempt")
	snap := clients[0].brk.Snapshot()
	require.Equal(t, breaker.StateClosed, snap.State)
	require.Zero(t, snap.Failures, "a full bulkhead is not the node's failure")

	close(h.release)
	require.NoError(t, <-done)
}

func TestInvokeWithOneNodeAndFullBulkheadIsResourceExhausted(t *testing.T) {
	t.Parallel()
	h := newHolder()
	m, _ := unitManager(t, clockwork.NewFakeClock(), 1, oneSlot, h.answer)
	done := h.occupy(t, m)

	err := m.Invoke(context.Background(), testRole, callUnary)
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.ErrorIs(t, err, ErrOverloaded)
	require.Contains(t, err.Error(), testRole)

	err = m.InvokeNode(context.Background(), 1, callUnary)
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.ErrorIs(t, err, ErrOverloaded)
	var ne *NodeError
	require.ErrorAs(t, err, &ne)
	require.Equal(t, int64(1), ne.NodeID)
	require.Equal(t, 1, h.hits.count(1))

	close(h.release)
	require.NoError(t, <-done)
	require.NoError(t, m.Invoke(context.Background(), testRole, callUnary), "the slot is free again")
}

func TestInvokeQueuesForBulkheadWithinCallerContext(t *testing.T) {
	t.Parallel()
	h := newHolder()
	m, clients := unitManager(t, clockwork.NewFakeClock(), 1, func(c *Config) {
		c.Bulkhead = bulkhead.Config{MaxConcurrent: 1, MaxQueue: 4} // MaxWait 0: the caller's ctx alone
	}, h.answer)
	done := h.occupy(t, m)

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { queued <- m.Invoke(ctx, testRole, callUnary) }()
	require.Eventually(t, func() bool { return clients[0].bh.Queued() == 1 }, testTimeout, time.Millisecond)
	cancel()
	err := <-queued
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, codes.Canceled, status.Code(err))
	require.Zero(t, clients[0].bh.Queued())

	go func() { queued <- m.Invoke(context.Background(), testRole, callUnary) }()
	require.Eventually(t, func() bool { return clients[0].bh.Queued() == 1 }, testTimeout, time.Millisecond)
	h.hold.Store(false)
	close(h.release)
	require.NoError(t, <-done)
	require.NoError(t, <-queued, "the queued call got the slot")
	require.Equal(t, 2, h.hits.count(1))
}
