package retry

import (
	"time"

	"github.com/cockroachdb/errors"
)

// Policy describes how often and how patiently Do retries an operation: the
// Backoff between attempts, how many attempts, and how long each may take.
type Policy struct {
	// Backoff shapes the waits between attempts. Default DefaultBackoff():
	// 100 ms × 1.6ⁿ up to 3 s, full jitter.
	Backoff
	// Attempts is the maximum number of attempts, the first included.
	// Default 3. Zero or less means retry until the context ends.
	Attempts int
	// PerAttemptTimeout bounds each attempt's context. Default 0: no bound
	// other than the caller's context. Must be ≥ 0.
	PerAttemptTimeout time.Duration
}

// DefaultPolicy returns the cluster-grade policy: 3 attempts, DefaultBackoff
// between them, no per-attempt timeout.
func DefaultPolicy() Policy {
	return Policy{Backoff: DefaultBackoff(), Attempts: 3}
}

// Validate reports the first field that is out of range, the Backoff's
// included.
func (p Policy) Validate() error {
	if err := p.Backoff.Validate(); err != nil {
		return err
	}
	if p.PerAttemptTimeout < 0 {
		return errors.Newf("retry: PerAttemptTimeout (%s) must be ≥ 0", p.PerAttemptTimeout)
	}
	return nil
}
