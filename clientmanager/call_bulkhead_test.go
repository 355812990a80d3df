package clientmanager

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/bulkhead"
)

// busyNodes returns a manager whose n nodes each have one bulkhead slot,
// taken by a call that holds it until the test ends.
func busyNodes(t *testing.T, n int, maxWait time.Duration) (*Manager, []*Client) {
	t.Helper()
	release := make(chan struct{})
	entered := make(chan struct{}, n)
	m, clients := unitManager(t, clockwork.NewRealClock(), n, func(c *Config) {
		c.Bulkhead = bulkhead.Config{MaxConcurrent: 1, MaxQueue: 8, MaxWait: maxWait}
	}, func(ctx context.Context, _ int64) error {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	done := make(chan struct{}, n)
	t.Cleanup(func() {
		close(release)
		for range n {
			<-done
		}
	})
	for id := int64(1); id <= int64(n); id++ {
		go func() {
			defer func() { done <- struct{}{} }()
			_ = m.InvokeNode(context.Background(), id, callUnary)
		}()
		<-entered
	}
	return m, clients
}

// timedOutWaits is the number of bulkhead waits that ran out of MaxWait,
// over clients.
func timedOutWaits(clients []*Client) (n uint64) {
	for _, c := range clients {
		n += c.bh.Stats().TimedOut
	}
	return n
}

func TestInvokeQueuesAtOneBulkheadOnlyWhenEveryNodeIsBusy(t *testing.T) {
	t.Parallel()
	const n = 4
	const maxWait = 100 * time.Millisecond
	m, clients := busyNodes(t, n, maxWait)
	start := time.Now()
	err := m.Invoke(context.Background(), testRole, callUnary)
	took := time.Since(start)
	require.ErrorIs(t, err, ErrOverloaded)
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.False(t, errorsIsUnavailable(err))
	require.Equal(t, uint64(1), timedOutWaits(clients), "one wait of MaxWait, not one per node")
	t.Logf("an overloaded call over %d busy nodes failed after %s (MaxWait %s)", n, took.Round(time.Millisecond), maxWait)
}

func TestInvokeTakesAFreeSlotBeforeQueueing(t *testing.T) {
	t.Parallel()
	var hits nodeSet
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	m, clients := unitManager(t, clockwork.NewFakeClock(), 3, func(c *Config) {
		c.Bulkhead = bulkhead.Config{MaxConcurrent: 1, MaxQueue: 8} // MaxWait 0: a queued call waits for its ctx
		c.Balancer.Policy = balancer.PolicyRoundRobin               // node 1 comes up every third pick
	}, func(_ context.Context, id int64) error {
		if id == 1 && hits.count(1) == 0 {
			hits.add(id)
			entered <- struct{}{}
			<-release
			return nil
		}
		hits.add(id)
		return nil
	})
	held := make(chan error, 1)
	go func() { held <- m.InvokeNode(context.Background(), 1, callUnary) }()
	<-entered
	for range 30 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		require.NoError(t, m.Invoke(ctx, testRole, callUnary), "a free node never waits behind a busy one")
		cancel()
	}
	require.Zero(t, clients[0].bh.Stats().Queued)
	require.Equal(t, 1, hits.count(1))
	close(release)
	require.NoError(t, <-held)
}
