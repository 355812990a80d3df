package balancer

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// source is the random source of a policy. Unseeded, it draws from
// math/rand/v2's global generator, which the runtime keeps per thread, so
// concurrent picks share no cache line. Seeded (WithSeed), it is a
// splitMix, whose draws are reproducible in a serial sequence of picks.
type source struct {
	seeded *splitMix // nil: unseeded
}

func newSource(o options) source {
	if o.seeded {
		s := &splitMix{}
		s.state.Store(o.seed)
		return source{seeded: s}
	}
	return source{}
}

func (s source) next() uint64 {
	if s.seeded == nil {
		return rand.Uint64()
	}
	return s.seeded.next()
}

// splitMix is SplitMix64 over an atomic counter: a seedable generator that
// concurrent callers share without a lock, each draw taking one atomic add.
type splitMix struct {
	state atomic.Uint64
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
