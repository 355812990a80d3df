package retry

import (
	"math"
	"time"

	"github.com/cockroachdb/errors"
)

// Policy describes how often and how patiently an operation is retried.
type Policy struct {
	// Attempts is the maximum number of attempts, the first included.
	// Default 3. Zero or less means retry until the context ends.
	Attempts int
	// InitialBackoff is the upper bound of the first wait. Default 100 ms.
	// Must be > 0.
	InitialBackoff time.Duration
	// MaxBackoff caps every wait. Default 3 s. Must be ≥ InitialBackoff.
	MaxBackoff time.Duration
	// Multiplier grows the bound after each attempt. Default 1.6. Must be ≥ 1.
	Multiplier float64
	// Jitter is the share of each wait that is random, in [0, 1]. Default 1
	// (full jitter: uniform in [0, bound]). Zero waits exactly the bound.
	Jitter float64
	// PerAttemptTimeout bounds each attempt's context. Default 0: no bound
	// other than the caller's context.
	PerAttemptTimeout time.Duration
}

// DefaultPolicy returns the cluster-grade policy: 3 attempts, waits bounded
// by 100 ms × 1.6ⁿ up to 3 s, full jitter, no per-attempt timeout.
func DefaultPolicy() Policy {
	return Policy{
		Attempts:       3,
		InitialBackoff: 100 * time.Millisecond,
		MaxBackoff:     3 * time.Second,
		Multiplier:     1.6,
		Jitter:         1,
	}
}

// Validate reports the first field that is out of range.
func (p Policy) Validate() error {
	switch {
	case p.InitialBackoff <= 0:
		return errors.Newf("retry: InitialBackoff (%s) must be > 0", p.InitialBackoff)
	case p.MaxBackoff < p.InitialBackoff:
		return errors.Newf("retry: MaxBackoff (%s) must be ≥ InitialBackoff (%s)", p.MaxBackoff, p.InitialBackoff)
	case p.Multiplier < 1 || math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0):
		return errors.Newf("retry: Multiplier (%v) must be a finite number ≥ 1", p.Multiplier)
	case p.Jitter < 0 || p.Jitter > 1 || math.IsNaN(p.Jitter):
		return errors.Newf("retry: Jitter (%v) must be in [0, 1]", p.Jitter)
	case p.PerAttemptTimeout < 0:
		return errors.Newf("retry: PerAttemptTimeout (%s) must be ≥ 0", p.PerAttemptTimeout)
	}
	return nil
}

// Bound returns the upper bound of the wait after attempt n (n ≥ 1 is the
// attempt that just failed): min(MaxBackoff, InitialBackoff·Multiplierⁿ⁻¹).
func (p Policy) Bound(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	b := float64(p.InitialBackoff) * math.Pow(p.Multiplier, float64(n-1))
	if b >= float64(p.MaxBackoff) || math.IsInf(b, 0) || math.IsNaN(b) {
		return p.MaxBackoff
	}
	return time.Duration(b)
}

// Backoff returns the wait after attempt n given r, a uniform random value in
// [0, 1). With full jitter (Jitter = 1) the wait is uniform in [0, Bound(n)];
// with Jitter j it is uniform in [(1-j)·Bound(n), Bound(n)]. It is a pure
// function: the same inputs give the same wait.
func (p Policy) Backoff(n int, r float64) time.Duration {
	if r < 0 || math.IsNaN(r) {
		r = 0
	}
	if r >= 1 {
		r = math.Nextafter(1, 0)
	}
	bound := float64(p.Bound(n))
	fixed := bound * (1 - p.Jitter)
	return time.Duration(fixed + (bound-fixed)*r)
}
