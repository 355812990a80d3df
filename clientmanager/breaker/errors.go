package breaker

import "github.com/cockroachdb/errors"

var (
	// ErrOpen is returned when the breaker is open and refuses the call.
	ErrOpen = errors.New("breaker: circuit breaker is open")
	// ErrTooManyProbes is returned when the breaker is half-open and all of
	// its probe permits are taken.
	ErrTooManyProbes = errors.New("breaker: circuit breaker is half-open and all probe permits are taken")
	// ErrInvalidConfig is returned (marked, errors.Is-able) when a Config
	// field is out of range; the message names the field and its value.
	ErrInvalidConfig = errors.New("breaker: invalid config")
)
