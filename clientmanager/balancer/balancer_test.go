package balancer

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
)

type balancerCase struct {
	name string
	new  func(t testing.TB) Balancer
}

// balancerCases builds every policy; the look-aside one starts with a mix
// of trusted nodes (1–5) and nodes still in blackout (6–10).
func balancerCases() []balancerCase {
	return []balancerCase{
		{"round robin", func(testing.TB) Balancer { return NewRoundRobin() }},
		{"power of two", func(testing.TB) Balancer { return NewPowerOfTwo(WithSeed(3)) }},
		{"look-aside", func(t testing.TB) Balancer {
			fc := clockwork.NewFakeClock()
			l := newTestLookAside(t, DefaultLookAsideConfig(), fc)
			for id := int64(1); id <= 5; id++ {
				l.Start(id).Done(time.Millisecond, nil)
			}
			fc.Advance(l.cfg.Blackout)
			for id := int64(1); id <= 10; id++ {
				l.Start(id).Done(time.Duration(id)*time.Millisecond, nil)
			}
			return l
		}},
	}
}

func TestPickNeverReturnsExcluded(t *testing.T) {
	for _, bc := range balancerCases() {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.new(t)
			rng := rand.New(rand.NewPCG(11, 12))
			var held []Call
			for trial := 0; trial < 3000; trial++ {
				var candidates []int64
				excluded := make(map[int64]bool)
				for id := int64(1); id <= 10; id++ {
					if rng.IntN(3) > 0 {
						candidates = append(candidates, id)
						if rng.IntN(2) == 0 {
							excluded[id] = true
						}
					}
				}
				var exclude func(int64) bool
				if len(excluded) > 0 || rng.IntN(2) == 0 {
					exclude = func(id int64) bool { return excluded[id] }
				}
				eligible := len(candidates) - len(excluded)

				id, ok := b.Pick(candidates, exclude)
				if eligible == 0 {
					require.False(t, ok, "trial %d: nothing eligible, picked %d", trial, id)
					continue
				}
				require.True(t, ok, "trial %d", trial)
				require.Contains(t, candidates, id, "trial %d", trial)
				require.False(t, excluded[id], "trial %d: picked excluded node %d", trial, id)

				// Vary the loads: leave some calls open for a while.
				c := b.Start(id)
				if rng.IntN(4) == 0 {
					held = append(held, c)
				} else {
					c.Done(time.Duration(rng.IntN(20))*time.Millisecond, nil)
				}
				if len(held) > 8 {
					held[0].Done(time.Millisecond, nil)
					held = held[1:]
				}
			}
			for _, c := range held {
				c.Done(time.Millisecond, nil)
			}
			for id := int64(1); id <= 10; id++ {
				require.Zero(t, b.InFlight(id), "node %d", id)
			}
		})
	}
}

func TestPickSingleEligible(t *testing.T) {
	for _, bc := range balancerCases() {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.new(t)
			candidates := []int64{1, 2, 3, 6, 7}
			for _, want := range candidates {
				exclude := func(id int64) bool { return id != want }
				for i := 0; i < 20; i++ {
					id, ok := b.Pick(candidates, exclude)
					require.True(t, ok)
					require.Equal(t, want, id)
				}
			}
			_, ok := b.Pick(nil, nil)
			require.False(t, ok)
		})
	}
}

func TestPickDoesNotModifyCandidates(t *testing.T) {
	for _, bc := range balancerCases() {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.new(t)
			candidates := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
			orig := slices.Clone(candidates)
			for i := 0; i < 100; i++ {
				b.Pick(candidates, excludeSet(4))
				b.Pick(candidates, nil)
			}
			require.Equal(t, orig, candidates)
		})
	}
}

func TestInFlightReturnsToZeroAfterStorm(t *testing.T) {
	const (
		workers    = 8
		iterations = 2000
	)
	for _, bc := range balancerCases() {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.new(t)
			candidates := []int64{1, 2, 3, 4, 5, 6}
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(seed uint64) {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(seed, 99))
					var open []Call
					for i := 0; i < iterations; i++ {
						switch {
						case rng.IntN(50) == 0:
							b.Remove(candidates[rng.IntN(len(candidates))])
						case rng.IntN(3) == 0 && len(open) > 0:
							open[0].Done(time.Millisecond, errNode)
							open = open[1:]
						default:
							id, ok := b.Pick(candidates, excludeSet(int64(1+rng.IntN(6))))
							if !ok {
								t.Error("nothing picked")
								return
							}
							open = append(open, b.Start(id))
						}
					}
					for _, c := range open {
						c.Done(time.Millisecond, nil)
					}
				}(uint64(w))
			}
			wg.Wait()
			for _, id := range candidates {
				require.Zero(t, b.InFlight(id), "node %d", id)
			}
		})
	}
}

func TestRemoveIsolatesCallsInFlight(t *testing.T) {
	for _, bc := range balancerCases() {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.new(t)
			old := []Call{b.Start(20), b.Start(20), b.Start(20)}
			require.Equal(t, int64(3), b.InFlight(20))
			require.Equal(t, int64(20), old[0].NodeID())

			b.Remove(20)
			require.Zero(t, b.InFlight(20))
			b.Remove(20) // idempotent

			fresh := b.Start(20)
			require.Equal(t, int64(1), b.InFlight(20))
			for _, c := range old {
				c.Done(time.Millisecond, nil) // ends on the forgotten state
			}
			require.Equal(t, int64(1), b.InFlight(20))
			fresh.Done(time.Millisecond, nil)
			require.Zero(t, b.InFlight(20))

			Call{}.Done(time.Second, nil) // the zero Call is inert
			require.Zero(t, Call{}.NodeID())
		})
	}
}

// TestPickWithInconsistentExclude checks that a filter that changes its
// answers mid-Pick (a caller's bug) cannot make Pick fail badly.
func TestPickWithInconsistentExclude(t *testing.T) {
	for _, bc := range balancerCases() {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.new(t)
			candidates := []int64{1, 2, 3, 6, 7}
			for flipAfter := 0; flipAfter < 12; flipAfter++ {
				calls := 0
				exclude := func(int64) bool {
					calls++
					return calls > flipAfter
				}
				id, ok := b.Pick(candidates, exclude)
				if ok {
					require.Contains(t, candidates, id)
				}
			}
		})
	}
}
