package startup

import (
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
)

// State is where a component is in its lifecycle.
type State int32

const (
	// StateInitializing is the state of a new Runner and of a component
	// running Init.
	StateInitializing State = iota
	// StateWaitingDependencies: Init is done; the Runner waits for the
	// component's required dependencies to be online.
	StateWaitingDependencies
	// StateStarting: the component runs Start.
	StateStarting
	// StateRegistering: the component serves; its session is being
	// registered in etcd.
	StateRegistering
	// StateStandBy: registered as the standby of an exclusive role, or an
	// active process whose active term ended (fenced); it waits for an
	// active term.
	StateStandBy
	// StateHealthy: registered and serving.
	StateHealthy
	// StateAbnormal: the session has not been registered for
	// Config.AbnormalAfter (etcd unreachable, or re-registration failing);
	// calls are rejected until the session is registered again.
	StateAbnormal
	// StateStopping: a graceful stop is under way.
	StateStopping
	// StateStopped: the component, the server and the session are gone.
	// No transition leaves it.
	StateStopped
)

var stateNames = [...]string{
	StateInitializing:        "Initializing",
	StateWaitingDependencies: "WaitingDependencies",
	StateStarting:            "Starting",
	StateRegistering:         "Registering",
	StateStandBy:             "StandBy",
	StateHealthy:             "Healthy",
	StateAbnormal:            "Abnormal",
	StateStopping:            "Stopping",
	StateStopped:             "Stopped",
}

// String returns the state's name, such as "Healthy".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// ParseState returns the State whose String is name.
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}

// transitions is the table of allowed transitions: transitions[from] lists
// every state to that may follow from.
var transitions = [...][]State{
	StateInitializing:        {StateWaitingDependencies, StateStopping},
	StateWaitingDependencies: {StateStarting, StateStopping},
	StateStarting:            {StateRegistering, StateStopping},
	StateRegistering:         {StateHealthy, StateStandBy, StateStopping},
	StateStandBy:             {StateHealthy, StateAbnormal, StateStopping},
	StateHealthy:             {StateAbnormal, StateStandBy, StateStopping},
	StateAbnormal:            {StateHealthy, StateStandBy, StateStopping},
	StateStopping:            {StateStopped},
	StateStopped:             nil,
}

// CanTransition reports whether the table allows from → to.
func CanTransition(from, to State) bool {
	if from < 0 || int(from) >= len(transitions) {
		return false
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// ErrIllegalTransition is returned (as an *IllegalTransitionError) when a
// transition is not in the table; errors.Is matches it.
var ErrIllegalTransition = errors.New("startup: illegal state transition")

// IllegalTransitionError is the error of a transition the table does not
// allow; the state did not change.
type IllegalTransitionError struct {
	From, To State
}

// Error names both states.
func (e *IllegalTransitionError) Error() string {
	return "startup: illegal state transition " + e.From.String() + " → " + e.To.String()
}

// Is makes errors.Is(err, ErrIllegalTransition) true.
func (e *IllegalTransitionError) Is(target error) bool { return target == ErrIllegalTransition }

// Transition is one change of state.
type Transition struct {
	From, To State
	// At is the clock time of the change.
	At time.Time
	// Reason says why, for people.
	Reason string
}

// Milvus's commonpb.StateCode values.
const (
	milvusInitializing int32 = 0
	milvusHealthy      int32 = 1
	milvusAbnormal     int32 = 2
	milvusStandBy      int32 = 3
	milvusStopping     int32 = 4
)

// ToMilvusStateCode maps s to the value of Milvus's commonpb.StateCode, for
// components that answer GetComponentStates:
//
//	Initializing, WaitingDependencies, Starting, Registering → 0 Initializing
//	Healthy  → 1 Healthy
//	Abnormal → 2 Abnormal
//	StandBy  → 3 StandBy
//	Stopping → 4 Stopping
//	Stopped  → 2 Abnormal (Milvus has no stopped code; the process is gone)
//
// An unknown State maps to 2 Abnormal.
func ToMilvusStateCode(s State) int32 {
	switch s {
	case StateInitializing, StateWaitingDependencies, StateStarting, StateRegistering:
		return milvusInitializing
	case StateHealthy:
		return milvusHealthy
	case StateStandBy:
		return milvusStandBy
	case StateStopping:
		return milvusStopping
	default:
		return milvusAbnormal
	}
}
