package balancer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func excludeSet(ids ...int64) func(int64) bool {
	set := make(map[int64]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return func(id int64) bool { return set[id] }
}

func TestRoundRobinSequence(t *testing.T) {
	tests := []struct {
		name       string
		candidates []int64
		exclude    func(int64) bool
		want       []int64
	}{
		{"all eligible", []int64{10, 20, 30}, nil, []int64{10, 20, 30, 10, 20, 30, 10}},
		{"middle excluded", []int64{10, 20, 30}, excludeSet(20), []int64{10, 30, 10, 30}},
		{"first excluded", []int64{10, 20, 30, 40}, excludeSet(10), []int64{20, 30, 40, 20, 30, 40}},
		{"one eligible", []int64{10, 20, 30}, excludeSet(10, 30), []int64{20, 20, 20}},
		{"single candidate", []int64{7}, nil, []int64{7, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRoundRobin()
			got := make([]int64, 0, len(tt.want))
			for range tt.want {
				id, ok := r.Pick(tt.candidates, tt.exclude)
				require.True(t, ok)
				got = append(got, id)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRoundRobinIsFairAcrossCalls(t *testing.T) {
	r := NewRoundRobin()
	candidates := []int64{1, 2, 3, 4, 5}
	exclude := excludeSet(3)
	counts := make(map[int64]int)
	for i := 0; i < 4*100; i++ {
		id, ok := r.Pick(candidates, exclude)
		require.True(t, ok)
		counts[id]++
	}
	require.Equal(t, map[int64]int{1: 100, 2: 100, 4: 100, 5: 100}, counts)
}

func TestRoundRobinNoEligible(t *testing.T) {
	r := NewRoundRobin()
	_, ok := r.Pick(nil, nil)
	require.False(t, ok)
	_, ok = r.Pick([]int64{1, 2}, excludeSet(1, 2))
	require.False(t, ok)
}

func TestRoundRobinOnlyAPickTakesATurn(t *testing.T) {
	candidates := []int64{10, 20, 30}
	t.Run("a pick that finds no eligible candidate", func(t *testing.T) {
		r := NewRoundRobin()
		got := make([]int64, 0, 4)
		for range 4 {
			_, ok := r.Pick(candidates, excludeSet(10, 20, 30))
			require.False(t, ok)
			id, ok := r.Pick(candidates, nil)
			require.True(t, ok)
			got = append(got, id)
		}
		require.Equal(t, []int64{10, 20, 30, 10}, got)
	})
	t.Run("peek", func(t *testing.T) {
		// Each call's first attempt fails and is retried elsewhere; the
		// retry first peeks whether it has somewhere to go.
		r := NewRoundRobin()
		var firsts, retries []int64
		for range 6 {
			first, ok := r.Pick(candidates, nil)
			require.True(t, ok)
			tried := excludeSet(first)
			peeked, ok := Peek(r, candidates, tried)
			require.True(t, ok)
			again, ok := Peek(r, candidates, tried)
			require.True(t, ok)
			require.Equal(t, peeked, again, "a peek does not take the turn")
			_, ok = Peek(r, candidates, excludeSet(10, 20, 30))
			require.False(t, ok)
			retry, ok := r.Pick(candidates, tried)
			require.True(t, ok)
			require.Equal(t, peeked, retry, "the pick after a peek is the peeked node")
			firsts, retries = append(firsts, first), append(retries, retry)
		}
		// Two turns per call: every node takes first attempts in turn.
		require.Equal(t, []int64{10, 30, 20, 10, 30, 20}, firsts)
		require.Equal(t, []int64{30, 20, 30, 30, 20, 30}, retries)
	})
}

func TestPeekFallsBackToPick(t *testing.T) {
	p := NewPowerOfTwo(WithSeed(1))
	for range 10 {
		id, ok := Peek(p, []int64{1, 2, 3}, excludeSet(2))
		require.True(t, ok)
		require.Contains(t, []int64{1, 3}, id)
	}
	_, ok := Peek(p, []int64{1, 2}, excludeSet(1, 2))
	require.False(t, ok)
}
