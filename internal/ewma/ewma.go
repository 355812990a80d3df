// Package ewma is the exponentially weighted moving average of the
// latencies the manager and the look-aside balancer keep per node.
package ewma

import (
	"math"
	"sync/atomic"
)

// EWMA is an exponentially weighted moving average, safe for concurrent
// use without a lock: an update is a compare-and-swap of the float's bits.
// The zero EWMA is empty: it has seen no sample and its Value is 0.
type EWMA struct {
	bits atomic.Uint64 // float64 bits; 0 while empty
}

// negZero is the bits of -0.0: a sample of zero, told apart from empty.
var negZero = math.Float64bits(math.Copysign(0, -1))

// store returns the bits that hold v; a zero v is kept as -0.0, which
// compares and computes as 0 but is not the empty state.
func store(v float64) uint64 {
	if v == 0 {
		return negZero
	}
	return math.Float64bits(v)
}

// Observe folds sample into the average with weight w, the share of the
// new sample in (0, 1]: higher reacts faster, lower is steadier. An empty
// average takes the sample as it is.
func (e *EWMA) Observe(sample, w float64) {
	for {
		old := e.bits.Load()
		next := sample
		if old != 0 {
			next = w*sample + (1-w)*math.Float64frombits(old)
		}
		if e.bits.CompareAndSwap(old, store(next)) {
			return
		}
	}
}

// Set restarts the average at sample, dropping its history.
func (e *EWMA) Set(sample float64) { e.bits.Store(store(sample)) }

// Value returns the average; 0 while empty.
func (e *EWMA) Value() float64 {
	if b := e.bits.Load(); b != 0 {
		return math.Float64frombits(b) + 0 // +0 turns -0.0 into 0
	}
	return 0
}

// Empty reports whether the average has seen no sample since it was made.
func (e *EWMA) Empty() bool { return e.bits.Load() == 0 }
