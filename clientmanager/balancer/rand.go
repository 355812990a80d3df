package balancer

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// splitMix is SplitMix64 over an atomic counter: a seedable generator that
// concurrent callers share without a lock, each draw taking one atomic add.
type splitMix struct {
	state atomic.Uint64
}

func newSplitMix(o options) *splitMix {
	s := &splitMix{}
	if o.seeded {
		s.state.Store(o.seed)
	} else {
		s.state.Store(rand.Uint64())
	}
	return s
}

func (s *splitMix) next() uint64 {
	z := s.state.Add(0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// bounded maps the random x to [0, n) by multiply-and-shift (Lemire) and
// returns the low word as randomness left over for a further draw.
func bounded(x uint64, n int) (int, uint64) {
	hi, lo := bits.Mul64(x, uint64(n))
	return int(hi), lo
}
