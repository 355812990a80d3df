package balancer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPowerOfTwoPrefersFewerInFlight(t *testing.T) {
	p := NewPowerOfTwo(WithSeed(1))
	candidates := []int64{1, 2, 3, 4}
	// In flight: node 1 none, node 2 one, node 3 two, node 4 three.
	var held []Call
	for id := int64(2); id <= 4; id++ {
		for i := int64(1); i < id; i++ {
			held = append(held, p.Start(id))
		}
	}
	const picks = 6000
	counts := make(map[int64]int)
	for i := 0; i < picks; i++ {
		id, ok := p.Pick(candidates, nil)
		require.True(t, ok)
		counts[id]++
	}
	// Of the 6 equally likely pairs, the least loaded node is in 3, the next
	// in 2 (winning both), the next wins 1 and the busiest none.
	require.InDelta(t, 3.0/6, share(counts, 1), 0.04)
	require.InDelta(t, 2.0/6, share(counts, 2), 0.04)
	require.InDelta(t, 1.0/6, share(counts, 3), 0.04)
	require.Zero(t, counts[4], "the busiest node must never win a pair")
	for _, c := range held {
		c.Done(0, nil)
	}
}

func TestPowerOfTwoDrawsDistinctCandidates(t *testing.T) {
	tests := []struct {
		name       string
		candidates []int64
		exclude    func(int64) bool
		busy       int64
		want       int64
	}{
		{"two candidates", []int64{1, 2}, nil, 1, 2},
		{"two eligible of four", []int64{1, 2, 3, 4}, excludeSet(1, 4), 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPowerOfTwo(WithSeed(7))
			c := p.Start(tt.busy)
			defer c.Done(0, nil)
			// With two eligible candidates both are always drawn, so the
			// idle one always wins; drawing one twice would let busy win.
			for i := 0; i < 1000; i++ {
				id, ok := p.Pick(tt.candidates, tt.exclude)
				require.True(t, ok)
				require.Equal(t, tt.want, id)
			}
		})
	}
}

func TestPowerOfTwoSeedIsReproducible(t *testing.T) {
	candidates := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	seq := func(seed uint64) []int64 {
		p := NewPowerOfTwo(WithSeed(seed))
		out := make([]int64, 100)
		for i := range out {
			out[i], _ = p.Pick(candidates, nil)
		}
		return out
	}
	require.Equal(t, seq(42), seq(42))
	require.NotEqual(t, seq(42), seq(43))
}
