package bulkhead

import (
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
)

// Limits on Config fields; they keep the packed state word and the slot
// table small.
const (
	// MaxConcurrentLimit is the largest accepted Config.MaxConcurrent.
	MaxConcurrentLimit = 1 << 16
	// MaxQueueLimit is the largest accepted Config.MaxQueue.
	MaxQueueLimit = 1 << 20
)

// Config sizes one node's bulkhead.
//
// The defaults suit RPC fan-out from one process to one cluster node: 64
// concurrent calls keep a node busy without exceeding the 100 concurrent
// streams many gRPC servers and proxies allow per connection; a queue of
// twice that absorbs a burst of two full rounds; and a one-second wait is a
// tenth of the default 10 s call attempt, leaving time to fail over to
// another replica.
type Config struct {
	// MaxConcurrent is the number of calls that may run at the same time.
	// Default 64. Must be between 1 and MaxConcurrentLimit; zero is invalid.
	MaxConcurrent int
	// MaxQueue is the number of callers that may wait for a slot when all are
	// taken. Default 128. Zero means no queue: a caller that finds every slot
	// taken fails at once with ErrBulkheadFull. At most MaxQueueLimit.
	MaxQueue int
	// MaxWait is the longest a caller waits in the queue before it fails with
	// ErrBulkheadTimeout. Default 1 s. Zero means no limit of its own: the
	// caller waits until its context ends. Must not be negative.
	MaxWait time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxConcurrent: 64,
		MaxQueue:      128,
		MaxWait:       time.Second,
	}
}

// Validate reports the first out-of-range field, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	if c.MaxConcurrent < 1 || c.MaxConcurrent > MaxConcurrentLimit {
		return errors.Wrapf(ErrInvalidConfig, "MaxConcurrent (%d) must be between 1 and %d",
			c.MaxConcurrent, MaxConcurrentLimit)
	}
	if c.MaxQueue < 0 || c.MaxQueue > MaxQueueLimit {
		return errors.Wrapf(ErrInvalidConfig, "MaxQueue (%d) must be between 0 and %d",
			c.MaxQueue, MaxQueueLimit)
	}
	if c.MaxWait < 0 {
		return errors.Wrapf(ErrInvalidConfig, "MaxWait (%s) must not be negative", c.MaxWait)
	}
	return nil
}

// Option sets a hook of a Bulkhead.
type Option func(*options)

type options struct {
	clock clockwork.Clock
}

// WithClock sets the clock that times MaxWait. Default: the real clock. Tests
// pass a clockwork.FakeClock.
func WithClock(c clockwork.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}
