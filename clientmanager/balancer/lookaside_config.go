package balancer

import (
	"time"

	"github.com/cockroachdb/errors"
)

// LookAsideConfig tunes LookAside.
type LookAsideConfig struct {
	// CostExpiry is how long a node's latency average stays trusted after
	// its last sample: an older average is not used (the node is treated
	// like a node in blackout) and restarts from the next sample. Default
	// 3 s. Must be positive.
	CostExpiry time.Duration
	// Blackout is how long after a node is first seen (or seen again after
	// Remove) its metrics are not trusted: meanwhile it gets at most its fair
	// share of picks (see LookAside). Default 5 s. Zero disables the
	// blackout. Must not be negative.
	Blackout time.Duration
	// ErrorPenalty is the least latency a failed call counts as in the
	// average, so that a node failing in a millisecond does not look fast
	// (Milvus issues 25014 and 25452). Default 1 s. Zero counts failed calls
	// with their observed latency. Must not be negative.
	ErrorPenalty time.Duration
	// Smoothing is the weight of a new latency sample in the node's
	// exponentially weighted moving average, in (0, 1]: higher reacts faster,
	// lower is steadier. Default 0.25. Zero is invalid.
	Smoothing float64
}

// DefaultLookAsideConfig returns the documented defaults.
func DefaultLookAsideConfig() LookAsideConfig {
	return LookAsideConfig{
		CostExpiry:   3 * time.Second,
		Blackout:     5 * time.Second,
		ErrorPenalty: time.Second,
		Smoothing:    0.25,
	}
}

// Validate reports the first out-of-range field, wrapped in ErrInvalidConfig.
func (c LookAsideConfig) Validate() error {
	switch {
	case c.CostExpiry <= 0:
		return errors.Wrapf(ErrInvalidConfig, "CostExpiry (%s) must be positive", c.CostExpiry)
	case c.Blackout < 0:
		return errors.Wrapf(ErrInvalidConfig, "Blackout (%s) must not be negative", c.Blackout)
	case c.ErrorPenalty < 0:
		return errors.Wrapf(ErrInvalidConfig, "ErrorPenalty (%s) must not be negative", c.ErrorPenalty)
	case !(c.Smoothing > 0 && c.Smoothing <= 1): // also rejects NaN
		return errors.Wrapf(ErrInvalidConfig, "Smoothing (%g) must be in (0, 1]", c.Smoothing)
	}
	return nil
}
