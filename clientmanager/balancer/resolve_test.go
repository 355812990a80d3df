package balancer

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hold starts n calls on id and returns them.
func hold(b Balancer, id int64, n int) []Call {
	calls := make([]Call, n)
	for i := range calls {
		calls[i] = b.Start(id)
	}
	return calls
}

func doneAll(calls []Call) {
	for _, c := range calls {
		c.Done(time.Millisecond, nil)
	}
}

// resolveFor picks from candidates until p caches their resolution.
func resolveFor(t *testing.T, p *PowerOfTwo, candidates []int64) {
	t.Helper()
	for i := 0; i < 2; i++ {
		_, ok := p.Pick(candidates, nil)
		require.True(t, ok)
	}
	require.NotNil(t, p.nodes.cached(candidates), "the slice is resolved after two picks")
}

// With two candidates both are drawn, so every pick goes to the one with
// fewer calls in flight: picksAll tells which counts the balancer reads.
func picksAll(t *testing.T, b Balancer, candidates []int64, want int64) {
	t.Helper()
	for i := 0; i < 50; i++ {
		id, ok := b.Pick(candidates, nil)
		require.True(t, ok)
		require.Equal(t, want, id, "pick %d", i)
	}
}

func TestPowerOfTwoResolutionFollowsRemoveAndStart(t *testing.T) {
	p := NewPowerOfTwo(WithSeed(1))
	candidates := []int64{1, 2}
	one := hold(p, 1, 2)
	defer doneAll(one)
	old := hold(p, 2, 5)
	resolveFor(t, p, candidates)
	picksAll(t, p, candidates, 1)

	// Node 2 leaves and comes back: its five calls end on the forgotten
	// state, the new one has none. Only the map tells the two apart (both
	// have ID 2), and the cached resolution still holds the old one.
	p.Remove(2)
	p.Start(2).Done(time.Millisecond, nil)
	require.Zero(t, p.InFlight(2))
	picksAll(t, p, candidates, 2)
	require.NotNil(t, p.nodes.cached(candidates), "resolved again")

	// Removed and not started again: a node not seen has no call in flight.
	fresh := hold(p, 2, 3)
	picksAll(t, p, candidates, 1)
	p.Remove(2)
	picksAll(t, p, candidates, 2)

	doneAll(old)
	doneAll(fresh)
	require.Zero(t, p.InFlight(2))
}

func TestPowerOfTwoResolvesANewSliceAfresh(t *testing.T) {
	setup := func(t *testing.T) *PowerOfTwo {
		p := NewPowerOfTwo(WithSeed(2))
		// In flight: node 1 none, node 2 three, node 3 three, node 4 none.
		calls := append(hold(p, 2, 3), hold(p, 3, 3)...)
		p.Start(1).Done(time.Millisecond, nil)
		p.Start(4).Done(time.Millisecond, nil)
		t.Cleanup(func() { doneAll(calls) })
		return p
	}

	t.Run("another slice", func(t *testing.T) {
		p := setup(t)
		first, other := []int64{1, 2}, []int64{3, 4}
		resolveFor(t, p, first)
		picksAll(t, p, first, 1)
		picksAll(t, p, other, 4) // by the map, then by its own resolution
		require.NotNil(t, p.nodes.cached(other), "the other slice, picked from on and on, is resolved")
		require.Nil(t, p.nodes.cached(first))
		picksAll(t, p, first, 1)
	})

	t.Run("same slice changed in place", func(t *testing.T) {
		p := setup(t)
		candidates := []int64{1, 2}
		resolveFor(t, p, candidates)
		picksAll(t, p, candidates, 1)
		candidates[0], candidates[1] = 3, 4
		picksAll(t, p, candidates, 4)
		candidates[0], candidates[1] = 2, 9 // 9: never started
		picksAll(t, p, candidates, 9)
	})

	t.Run("a node started after the resolution", func(t *testing.T) {
		p := setup(t)
		candidates := []int64{2, 9}
		resolveFor(t, p, candidates)
		picksAll(t, p, candidates, 9)
		busy := hold(p, 9, 4)
		defer doneAll(busy)
		picksAll(t, p, candidates, 2)
	})
}

// A caller passing the same slice allocates once, to resolve it; one
// passing a new slice on every Pick never; one alternating between two
// slices once per 2·replaceAfter Picks at most.
func TestPickAllocatesOnlyToResolveASlice(t *testing.T) {
	for _, bc := range balancerCases() {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.new(t)
			for id := int64(1); id <= 10; id++ {
				b.Start(id).Done(time.Millisecond, nil) // every node known
			}
			a := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
			c := []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
			d := []int64{2, 4, 6, 8, 10, 1, 3, 5, 7, 9}
			pick := func(candidates []int64) {
				if _, ok := b.Pick(candidates, nil); !ok {
					t.Fatal("no pick")
				}
			}
			require.Zero(t, testing.AllocsPerRun(100, func() { pick(a) }))
			require.Zero(t, testing.AllocsPerRun(100, func() {
				pick(a)
				pick(c)
				pick(d)
			}))
			const pairs = 8 * replaceAfter
			allocs := testing.AllocsPerRun(10, func() {
				for i := 0; i < pairs; i++ {
					pick(a)
					pick(c)
				}
			})
			// A resolution is two allocations; one more for the phase.
			require.LessOrEqual(t, allocs, float64((pairs/replaceAfter+1)*2))
		})
	}
}

// PickIndex is Pick returning the index: on twin balancers with the same
// seed and history, they agree pick after pick, with and without a filter.
func TestPickIndexAgreesWithPick(t *testing.T) {
	sets := [][]int64{
		{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		{3, 7, 9},
		{4},
		{},
		{10, 20, 30, 40}, // 20–40 never started
	}
	for _, bc := range balancerCases() {
		t.Run(bc.name, func(t *testing.T) {
			picker, indexer := bc.new(t), bc.new(t)
			ip, isIndexPicker := indexer.(IndexPicker)
			require.True(t, isIndexPicker)
			rng := rand.New(rand.NewPCG(5, 6))
			var open [2][]Call
			for step := 0; step < 2000; step++ {
				candidates := sets[rng.IntN(len(sets))]
				var exclude func(int64) bool
				if rng.IntN(3) == 0 {
					exclude = excludeSet(int64(1+rng.IntN(10)), int64(1+rng.IntN(10)))
				}
				id, ok := picker.Pick(candidates, exclude)
				i, iok := ip.PickIndex(candidates, exclude)
				require.Equal(t, ok, iok, "step %d", step)
				if !ok {
					continue
				}
				require.Equal(t, id, candidates[i], "step %d", step)
				require.False(t, exclude != nil && exclude(id))
				// Both keep the same calls in flight, so later picks see
				// the same counts.
				open[0] = append(open[0], picker.Start(id))
				open[1] = append(open[1], indexer.Start(candidates[i]))
				if rng.IntN(2) == 0 {
					k := rng.IntN(len(open[0]))
					open[0][k].Done(time.Millisecond, nil)
					open[1][k].Done(time.Millisecond, nil)
					open[0] = append(open[0][:k], open[0][k+1:]...)
					open[1] = append(open[1][:k], open[1][k+1:]...)
				}
			}
			doneAll(open[0])
			doneAll(open[1])
		})
	}
}

// Unseeded, the draws come from the runtime's generator: with every node
// idle, the first of the pair wins, so each node gets a fair share.
func TestPowerOfTwoUnseededSpreadsPicks(t *testing.T) {
	p := NewPowerOfTwo()
	candidates := []int64{1, 2, 3, 4}
	counts := make(map[int64]int)
	for i := 0; i < 8000; i++ {
		id, ok := p.Pick(candidates, nil)
		require.True(t, ok)
		counts[id]++
	}
	for _, id := range candidates {
		require.InDelta(t, 0.25, share(counts, id), 0.04, "node %d", id)
	}
}
