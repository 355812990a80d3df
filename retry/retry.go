package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jonboulle/clockwork"
)

// ErrAttemptsExhausted is returned (wrapped around the last error) when every
// attempt of a Policy failed.
var ErrAttemptsExhausted = errors.New("retry: attempts exhausted")

// ErrDeadlineTooClose is returned (wrapped around the last error) when the
// next wait would cross the context's deadline, so Do gave up early.
var ErrDeadlineTooClose = errors.New("retry: next attempt would cross the deadline")

// ErrNotRetryable is returned (wrapped around the last error) when the
// RetryIf predicate rejected the last error.
var ErrNotRetryable = errors.New("retry: error is not retryable")

// Error is what Do returns when it gives up: how many attempts were made,
// why it stopped (ErrAttemptsExhausted, ErrDeadlineTooClose, ErrNotRetryable
// or the context's error) and the last attempt's error. errors.Is and
// errors.As see both Reason and Last.
type Error struct {
	Attempts int
	Reason   error
	Last     error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v after %d attempt(s): %v", e.Reason, e.Attempts, e.Last)
}

// Unwrap returns Reason and Last.
func (e *Error) Unwrap() []error { return []error{e.Reason, e.Last} }

type unrecoverable struct{ err error }

func (u *unrecoverable) Error() string { return u.err.Error() }
func (u *unrecoverable) Unwrap() error { return u.err }

// Unrecoverable marks err so that Do stops at once and returns err itself.
func Unrecoverable(err error) error {
	if err == nil {
		return nil
	}
	return &unrecoverable{err: err}
}

// IsUnrecoverable reports whether err was marked by Unrecoverable.
func IsUnrecoverable(err error) bool {
	var u *unrecoverable
	return errors.As(err, &u)
}

// Option changes how Do runs. Options are hooks; the policy is data.
type Option func(*options)

type options struct {
	clock   clockwork.Clock
	rand    func() float64
	retryIf func(error) bool
	onRetry func(attempt int, err error, wait time.Duration)
}

// WithClock sets the clock Do waits on (a fake one in tests).
func WithClock(c clockwork.Clock) Option { return func(o *options) { o.clock = c } }

// WithRand sets the source of uniform values in [0, 1) used for jitter.
func WithRand(f func() float64) Option { return func(o *options) { o.rand = f } }

// RetryIf sets the predicate that decides whether an error is worth another
// attempt. By default every error is, except one marked Unrecoverable and the
// context's own error.
func RetryIf(f func(error) bool) Option { return func(o *options) { o.retryIf = f } }

// OnRetry is called after a failed attempt, before the wait, with the
// attempt number (from 1), its error and the wait chosen.
func OnRetry(f func(attempt int, err error, wait time.Duration)) Option {
	return func(o *options) { o.onRetry = f }
}

// Do calls fn until it succeeds, the policy's attempts are spent, fn's error
// is unrecoverable or rejected by RetryIf, or ctx ends. The first attempt
// runs at once. Each attempt gets ctx, bounded by PerAttemptTimeout when set.
//
// The error returned wraps the last attempt's error (errors.Is sees it) and
// says how many attempts were made. When ctx ends during a wait Do returns
// at once with ctx's error, wrapping the last attempt's error as detail.
func Do(ctx context.Context, p Policy, fn func(ctx context.Context) error, opts ...Option) error {
	if err := p.Validate(); err != nil {
		return err
	}
	o := options{clock: clockwork.NewRealClock(), rand: rand.Float64}
	for _, opt := range opts {
		opt(&o)
	}
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last == nil {
				return err
			}
			return &Error{Attempts: attempt - 1, Reason: err, Last: last}
		}
		last = runAttempt(ctx, p, o.clock, fn)
		if last == nil {
			return nil
		}
		if IsUnrecoverable(last) {
			var u *unrecoverable
			errors.As(last, &u)
			return u.err
		}
		if ctx.Err() != nil {
			continue // reported at the top of the loop
		}
		if o.retryIf != nil && !o.retryIf(last) {
			return &Error{Attempts: attempt, Reason: ErrNotRetryable, Last: last}
		}
		if p.Attempts > 0 && attempt >= p.Attempts {
			return &Error{Attempts: attempt, Reason: ErrAttemptsExhausted, Last: last}
		}
		wait := p.Delay(attempt, o.rand())
		if dl, ok := ctx.Deadline(); ok && o.clock.Until(dl) <= wait {
			return &Error{Attempts: attempt, Reason: ErrDeadlineTooClose, Last: last}
		}
		if o.onRetry != nil {
			o.onRetry(attempt, last, wait)
		}
		if wait > 0 {
			t := o.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.Chan():
			}
		}
	}
}

func runAttempt(ctx context.Context, p Policy, clock clockwork.Clock, fn func(ctx context.Context) error) error {
	if p.PerAttemptTimeout <= 0 {
		return fn(ctx)
	}
	actx, cancel := clockwork.WithTimeout(ctx, clock, p.PerAttemptTimeout)
	defer cancel()
	return fn(actx)
}
