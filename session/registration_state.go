package session

import "strconv"

// State is where a Registration is in its life. A Registration returned by
// Register starts Connected.
type State int32

const (
	// StateConnected: the lease was acknowledged by etcd within its
	// deadline; the session is registered.
	StateConnected State = iota + 1
	// StateDisconnected: the keepalive deadline passed without an
	// acknowledgement. The lease may still be alive (etcd could not be
	// reached, or is electing a leader): the keys are kept and, as soon as
	// etcd answers, TimeToLive decides between Connected (the same lease
	// resumes, no new key, no event) and Reregistering.
	StateDisconnected
	// StateReregistering: etcd said the lease is gone (Lost is closed).
	// The Registration registers again with the same ServerID and
	// Incarnation under a new lease, with backoff, until it succeeds or is
	// closed. Under LostPolicy Exit it goes to StateClosed instead.
	StateReregistering
	// StateClosed: Close was called, or the lease was lost under
	// LostPolicy Exit. No state follows.
	StateClosed
)

var regStateNames = [...]string{
	StateConnected:     "Connected",
	StateDisconnected:  "Disconnected",
	StateReregistering: "Reregistering",
	StateClosed:        "Closed",
}

// String returns the state's name, such as "Disconnected".
func (s State) String() string {
	if s > 0 && int(s) < len(regStateNames) {
		return regStateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}
