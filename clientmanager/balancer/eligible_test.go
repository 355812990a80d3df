package balancer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEligible(t *testing.T) {
	candidates := []int64{10, 20, 30, 40, 50}
	skip := func(id int64) bool { return id == 20 || id == 40 }
	for _, tc := range []struct {
		name    string
		exclude func(int64) bool
		want    []int64
	}{
		{"no filter", nil, []int64{10, 20, 30, 40, 50}},
		{"filter", skip, []int64{10, 30, 50}},
		{"all excluded", func(int64) bool { return true }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el := eligible{candidates, tc.exclude}
			require.Equal(t, len(tc.want), el.count())
			for k, id := range tc.want {
				i, ok := el.nth(k)
				require.True(t, ok)
				require.Equal(t, id, candidates[i], "nth(%d)", k)
			}
			_, ok := el.nth(len(tc.want))
			require.False(t, ok, "past the last eligible candidate")
			if len(tc.want) >= 2 {
				a, b, ok := el.pair(len(tc.want)-1, 0)
				require.True(t, ok)
				require.Equal(t, []int64{tc.want[len(tc.want)-1], tc.want[0]}, []int64{candidates[a], candidates[b]})
			}
			_, _, ok = el.pair(0, len(tc.want))
			require.False(t, ok)

			// A walk from any offset visits each eligible candidate once,
			// in candidate order, wrapping around.
			for off := range candidates {
				var got []int64
				for w := el.walk(off); ; {
					i, id, ok := w.next()
					if !ok {
						break
					}
					require.Equal(t, candidates[i], id)
					got = append(got, id)
				}
				require.ElementsMatch(t, tc.want, got, "from %d", off)
				if len(got) > 0 {
					require.GreaterOrEqual(t, got[0], candidates[off], "starts at or after offset %d", off)
				}
			}
		})
	}
}

// An exclude that changes its answers during a Pick leaves nth and pair
// short of the count they were given, which they report.
func TestEligibleExcludeChangesItsMind(t *testing.T) {
	calls := 0
	fickle := func(int64) bool { calls++; return calls > 3 } // eligible at first, then not
	el := eligible{[]int64{1, 2, 3}, fickle}
	require.Equal(t, 3, el.count())
	_, ok := el.nth(2)
	require.False(t, ok)
	_, _, ok = el.pair(0, 2)
	require.False(t, ok)
}

func TestEligibleDoesNotAllocate(t *testing.T) {
	candidates := []int64{1, 2, 3, 4, 5, 6, 7, 8}
	skip := func(id int64) bool { return id%3 == 0 }
	allocs := testing.AllocsPerRun(100, func() {
		el := eligible{candidates, skip}
		_ = el.count()
		_, _ = el.nth(3)
		_, _, _ = el.pair(1, 4)
		for w := el.walk(5); ; {
			if _, _, ok := w.next(); !ok {
				break
			}
		}
	})
	require.Zero(t, allocs)
}
