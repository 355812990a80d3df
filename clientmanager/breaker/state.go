package breaker

import "strconv"

// State is the state of a Breaker.
type State int32

const (
	// StateClosed admits every call and counts the results.
	StateClosed State = iota
	// StateOpen refuses every call until the break duration is over.
	StateOpen
	// StateHalfOpen admits a bounded number of probe calls.
	StateHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// canTransition is the table of allowed state changes:
//
//	closed    → open
//	open      → half-open
//	half-open → closed | open
func canTransition(from, to State) bool {
	switch from {
	case StateClosed:
		return to == StateOpen
	case StateOpen:
		return to == StateHalfOpen
	case StateHalfOpen:
		return to == StateClosed || to == StateOpen
	}
	return false
}

// Outcome is the result of a call as far as the breaker is concerned. A
// value other than the three below is treated as Excluded.
type Outcome uint8

const (
	// Success means the node answered; it counts towards closing.
	Success Outcome = iota
	// Failure means the node did not answer usefully; it counts towards
	// opening.
	Failure
	// Excluded decides nothing: the call is forgotten, and a half-open
	// probe permit it held is returned. Used when the caller gave up.
	Excluded
)

// String returns "success", "failure" or "excluded".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Excluded:
		return "excluded"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}
