package balancer

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
)

func newTestLookAside(t testing.TB, cfg LookAsideConfig, fc clockwork.Clock) *LookAside {
	t.Helper()
	l, err := NewLookAside(cfg, WithClock(fc), WithSeed(1))
	require.NoError(t, err)
	return l
}

// outcome is how a simulated node answers: after latency, with err.
type outcome struct {
	latency time.Duration
	err     error
}

// simulate runs picks sequential calls (Pick, Start, Done with the node's
// outcome) and returns how many each node got.
func simulate(t testing.TB, b Balancer, candidates []int64, nodes map[int64]outcome, picks int) map[int64]int {
	t.Helper()
	got := make(map[int64]int)
	for i := 0; i < picks; i++ {
		id, ok := b.Pick(candidates, nil)
		require.True(t, ok)
		o, known := nodes[id]
		require.True(t, known, "picked unknown node %d", id)
		b.Start(id).Done(o.latency, o.err)
		got[id]++
	}
	return got
}

func share(counts map[int64]int, id int64) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	return float64(counts[id]) / float64(total)
}
