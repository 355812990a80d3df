package bulkhead

import "github.com/cockroachdb/errors"

var (
	// ErrBulkheadFull is returned when every slot of the node is taken and its
	// wait queue holds MaxQueue callers already. It is returned unwrapped, so
	// rejecting a call under overload costs no allocation.
	ErrBulkheadFull = errors.New("bulkhead full")

	// ErrBulkheadTimeout is returned when a caller waited MaxWait in the queue
	// without being handed a slot. It is distinct from ErrBulkheadFull (the
	// caller was admitted to the queue); both mean the node is overloaded.
	ErrBulkheadTimeout = errors.New("bulkhead wait timed out")

	// ErrInvalidConfig is returned by Config.Validate and New when a field of
	// Config is out of range; the message names the field and its value.
	ErrInvalidConfig = errors.New("invalid bulkhead config")
)

// IsOverloaded reports whether err says the bulkhead turned the call away
// (ErrBulkheadFull or ErrBulkheadTimeout), as opposed to the caller's context
// ending.
func IsOverloaded(err error) bool {
	return errors.Is(err, ErrBulkheadFull) || errors.Is(err, ErrBulkheadTimeout)
}
