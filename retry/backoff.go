package retry

import (
	"math"
	"time"

	"github.com/cockroachdb/errors"
)

// Backoff is the shape of the waits between attempts: a bound that starts at
// Initial, grows by Multiplier after each attempt up to Max, and a random
// share of it (Jitter). It is plain data with pure methods; loops that need
// only a wait (redialling, re-registering, re-listing) use it alone, Do uses
// it inside a Policy.
type Backoff struct {
	// Initial is the upper bound of the first wait. Default 100 ms. Must be
	// > 0.
	Initial time.Duration
	// Max caps every wait. Default 3 s. Must be ≥ Initial.
	Max time.Duration
	// Multiplier grows the bound after each attempt. Default 1.6. Must be
	// a finite number ≥ 1.
	Multiplier float64
	// Jitter is the share of each wait that is random, in [0, 1]. Default 1
	// (full jitter: uniform in [0, bound]). Zero waits exactly the bound.
	Jitter float64
}

// DefaultBackoff returns the cluster-grade backoff: waits bounded by
// 100 ms × 1.6ⁿ up to 3 s, full jitter.
func DefaultBackoff() Backoff {
	return Backoff{
		Initial:    100 * time.Millisecond,
		Max:        3 * time.Second,
		Multiplier: 1.6,
		Jitter:     1,
	}
}

// Validate reports the first field that is out of range.
func (b Backoff) Validate() error {
	switch {
	case b.Initial <= 0:
		return errors.Newf("retry: Backoff.Initial (%s) must be > 0", b.Initial)
	case b.Max < b.Initial:
		return errors.Newf("retry: Backoff.Max (%s) must be ≥ Backoff.Initial (%s)", b.Max, b.Initial)
	case b.Multiplier < 1 || math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0):
		return errors.Newf("retry: Backoff.Multiplier (%v) must be a finite number ≥ 1", b.Multiplier)
	case b.Jitter < 0 || b.Jitter > 1 || math.IsNaN(b.Jitter):
		return errors.Newf("retry: Backoff.Jitter (%v) must be in [0, 1]", b.Jitter)
	}
	return nil
}

// Bound returns the upper bound of the wait after attempt n (n ≥ 1 is the
// attempt that just failed): min(Max, Initial·Multiplierⁿ⁻¹).
func (b Backoff) Bound(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(n-1))
	if d >= float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.Max
	}
	return time.Duration(d)
}

// Delay returns the wait after attempt n given r, a uniform random value in
// [0, 1). With full jitter (Jitter = 1) the wait is uniform in [0, Bound(n)];
// with Jitter j it is uniform in [(1-j)·Bound(n), Bound(n)]. It is a pure
// function: the same inputs give the same wait.
func (b Backoff) Delay(n int, r float64) time.Duration {
	if r < 0 || math.IsNaN(r) {
		r = 0
	}
	if r >= 1 {
		r = math.Nextafter(1, 0)
	}
	bound := float64(b.Bound(n))
	fixed := bound * (1 - b.Jitter)
	return time.Duration(fixed + (bound-fixed)*r)
}
