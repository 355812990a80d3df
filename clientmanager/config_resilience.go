package clientmanager

import (
	"math"
	"time"

	"github.com/cockroachdb/errors"
)

// RetryBudget bounds the retries Invoke and InvokeNode make for one role,
// as a share of the calls made for it (the retry budget of Finagle and
// Linkerd): within any Window, the retries may number at most
// Ratio × calls + MinPerSecond × Window-in-seconds. A call whose retry
// does not fit returns its last error at once. First attempts are never
// refused; only retries spend the budget. Calls and retries are counted
// in ten buckets, so the window slides in steps of Window/10.
type RetryBudget struct {
	// Ratio is how many retries each call adds to the budget. Default 0.2
	// (under total failure, at most 20 % more attempts than calls, plus
	// the floor). Must be a finite number ≥ 0; zero leaves only the floor.
	Ratio float64
	// MinPerSecond is the floor: this many retries per second of Window
	// are allowed whatever the number of calls, so a role that gets few
	// calls can still retry. Default 10. Must be ≥ 0.
	MinPerSecond float64
	// Window is how long calls and retries are remembered. Default 10 s.
	// Must be ≥ 10 ms.
	Window time.Duration
}

// DefaultRetryBudget returns the documented defaults: 20 % of calls plus
// 10 retries per second, over 10 s.
func DefaultRetryBudget() RetryBudget {
	return RetryBudget{Ratio: 0.2, MinPerSecond: 10, Window: 10 * time.Second}
}

// Limits of the resilience fields.
const (
	maxPoolSize      = 64
	minBudgetWindow  = 10 * time.Millisecond
	budgetBuckets    = 10
	queueAlarmFactor = 0.8 // RoleHealth: a bulkhead queue fuller than this is Degraded
)

// validateResilience checks the fields of the per-node resilience; each
// error names its field.
func (c Config) validateResilience() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, errors.Newf(format, args...)) }
	if err := c.Breaker.Validate(); err != nil {
		errs = append(errs, errors.Wrap(err, "Breaker"))
	}
	if err := c.Bulkhead.Validate(); err != nil {
		errs = append(errs, errors.Wrap(err, "Bulkhead"))
	}
	if c.MaxEjectionPercent < 0 || c.MaxEjectionPercent > 100 {
		bad("MaxEjectionPercent (%d) must be in [0, 100]", c.MaxEjectionPercent)
	}
	b := c.RetryBudget
	if b.Ratio < 0 || math.IsNaN(b.Ratio) || math.IsInf(b.Ratio, 0) {
		bad("RetryBudget.Ratio (%v) must be a finite number ≥ 0", b.Ratio)
	}
	if b.MinPerSecond < 0 || math.IsNaN(b.MinPerSecond) || math.IsInf(b.MinPerSecond, 0) {
		bad("RetryBudget.MinPerSecond (%v) must be a finite number ≥ 0", b.MinPerSecond)
	}
	if b.Window < minBudgetWindow {
		bad("RetryBudget.Window (%s) must be ≥ %s", b.Window, minBudgetWindow)
	}
	if c.PoolSize < 1 || c.PoolSize > maxPoolSize {
		bad("PoolSize (%d) must be in [1, %d]", c.PoolSize, maxPoolSize)
	}
	if c.IdleTimeout < 0 {
		bad("IdleTimeout (%s) must be ≥ 0", c.IdleTimeout)
	}
	if c.UnhealthyAfter <= 0 {
		bad("UnhealthyAfter (%s) must be > 0", c.UnhealthyAfter)
	}
	if c.BreakerRefreshInterval <= 0 {
		bad("BreakerRefreshInterval (%s) must be > 0", c.BreakerRefreshInterval)
	}
	return errs
}
