package breaker

import (
	"math"
	"time"

	"github.com/cockroachdb/errors"
)

// minBucketWidth is the finest resolution of the sliding window.
const minBucketWidth = time.Millisecond

// Config tunes a Breaker. Start from DefaultConfig.
type Config struct {
	// ConsecutiveFailures opens the breaker when this many failures are
	// recorded in a row while closed (the N-th one trips). Default 5. Zero
	// disables the rule.
	ConsecutiveFailures int
	// FailureRatio opens the breaker when failures / calls in the Window is
	// ≥ this value, once MinimumThroughput calls fell in the Window.
	// Default 0.5. In [0, 1]; zero disables the rule.
	FailureRatio float64
	// MinimumThroughput is the number of calls (successes + failures) the
	// Window must hold before FailureRatio is considered. Default 20. Must
	// be ≥ 1 when FailureRatio is set.
	MinimumThroughput int
	// Window is the length of the sliding window the ratio is computed on.
	// Default 10 s. Must be > 0.
	Window time.Duration
	// Buckets is the number of buckets the Window is divided into; counts
	// expire one bucket at a time. Default 10. Must be ≥ 1 and leave
	// buckets of at least 1 ms.
	Buckets int
	// BreakDuration is how long the breaker stays open after its first
	// opening. Default 5 s. Must be > 0.
	BreakDuration time.Duration
	// MaxBreakDuration caps the break duration, which doubles on every
	// consecutive opening. Default 60 s. Must be ≥ BreakDuration; equal to it
	// disables the growth.
	MaxBreakDuration time.Duration
	// BreakJitter is the largest share taken off each break duration at
	// random, in [0, 1). Default 0.2 (each break lasts 80–100 % of its
	// nominal value). Zero disables jitter.
	BreakJitter float64
	// BreakDurationFunc, when set, replaces BreakDuration, MaxBreakDuration
	// and BreakJitter: it returns the break duration of the n-th consecutive
	// opening (n ≥ 1). It is called outside the breaker's lock; a negative
	// result counts as zero. Default nil.
	BreakDurationFunc func(consecutiveOpens int) time.Duration
	// HalfOpenProbes is the number of probe calls admitted while half-open;
	// that many successes close the breaker. Default 3. Must be ≥ 1.
	HalfOpenProbes int
	// ProbeLease is how long a probe may run without reporting before it
	// counts as failed. Default 10 s (the default call attempt timeout).
	// Must be > 0.
	ProbeLease time.Duration
	// Classifier maps a call's non-nil error to an Outcome in
	// Breaker.Classify and Breaker.Done, after the caller's own cancellation
	// has been excluded. Default nil: ClassifyError.
	Classifier func(err error) Outcome
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		ConsecutiveFailures: 5,
		FailureRatio:        0.5,
		MinimumThroughput:   20,
		Window:              10 * time.Second,
		Buckets:             10,
		BreakDuration:       5 * time.Second,
		MaxBreakDuration:    60 * time.Second,
		BreakJitter:         0.2,
		HalfOpenProbes:      3,
		ProbeLease:          10 * time.Second,
	}
}

// Validate reports the first field that is out of range. The error is
// marked with ErrInvalidConfig.
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return errors.Mark(err, ErrInvalidConfig)
	}
	return nil
}

func (c Config) validate() error {
	switch {
	case c.ConsecutiveFailures < 0:
		return errors.Newf("breaker: ConsecutiveFailures (%d) must be ≥ 0", c.ConsecutiveFailures)
	case c.FailureRatio < 0 || c.FailureRatio > 1 || math.IsNaN(c.FailureRatio):
		return errors.Newf("breaker: FailureRatio (%v) must be in [0, 1]", c.FailureRatio)
	case c.ConsecutiveFailures == 0 && c.FailureRatio == 0:
		return errors.Newf("breaker: ConsecutiveFailures (0) and FailureRatio (0) are both disabled; the breaker could never open")
	case c.MinimumThroughput < 0 || (c.FailureRatio > 0 && c.MinimumThroughput < 1):
		return errors.Newf("breaker: MinimumThroughput (%d) must be ≥ 1 when FailureRatio is set", c.MinimumThroughput)
	case c.Window <= 0:
		return errors.Newf("breaker: Window (%s) must be > 0", c.Window)
	case c.Buckets < 1:
		return errors.Newf("breaker: Buckets (%d) must be ≥ 1", c.Buckets)
	case c.Window/time.Duration(c.Buckets) < minBucketWidth:
		return errors.Newf("breaker: Buckets (%d) must leave buckets of at least %s in Window (%s)", c.Buckets, minBucketWidth, c.Window)
	case c.BreakDuration <= 0:
		return errors.Newf("breaker: BreakDuration (%s) must be > 0", c.BreakDuration)
	case c.MaxBreakDuration < c.BreakDuration:
		return errors.Newf("breaker: MaxBreakDuration (%s) must be ≥ BreakDuration (%s)", c.MaxBreakDuration, c.BreakDuration)
	case c.BreakJitter < 0 || c.BreakJitter >= 1 || math.IsNaN(c.BreakJitter):
		return errors.Newf("breaker: BreakJitter (%v) must be in [0, 1)", c.BreakJitter)
	case c.HalfOpenProbes < 1:
		return errors.Newf("breaker: HalfOpenProbes (%d) must be ≥ 1", c.HalfOpenProbes)
	case c.ProbeLease <= 0:
		return errors.Newf("breaker: ProbeLease (%s) must be > 0", c.ProbeLease)
	}
	return nil
}
