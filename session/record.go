package session

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// Session is the record a process registers: who it is and where it serves.
// Its JSON form uses Milvus's field names.
type Session struct {
	// ServerID is unique in the cluster, allocated by Register.
	ServerID int64 `json:"ServerID"`
	// ServerName is the role, such as "querynode" or "rootcoord".
	ServerName string `json:"ServerName"`
	// Address is the gRPC address the process serves on, host:port.
	Address string `json:"Address"`
	// Exclusive is true for a role that has one active process at a time.
	Exclusive bool `json:"Exclusive"`
	// Stopping is true once the process has begun a graceful stop.
	Stopping bool `json:"Stopping"`
	// Version is the process's semantic version, such as "2.4.1".
	Version string `json:"Version"`
	// LeaseID is the lease the record is currently written with. It changes
	// when the process re-registers after a lost lease; the process does not.
	LeaseID int64 `json:"LeaseID"`
	// HostName is the machine's host name, for people.
	HostName string `json:"HostName"`
	// ServerLabels are free-form labels.
	ServerLabels map[string]string `json:"ServerLabels,omitempty"`
	// Incarnation is random per process start (16 hex digits, filled by
	// Register when empty) and never changes while the process lives: a
	// re-registration under a new lease is the same incarnation. ServerID
	// and Incarnation identify one process; a record without Incarnation
	// (written by Milvus) is identified by ServerID and LeaseID instead.
	Incarnation string `json:"Incarnation,omitempty"`

	// extra keeps fields this version does not know, so a re-put does not
	// lose what a newer writer stored.
	extra map[string]json.RawMessage
}

// knownFields are the JSON names Session decodes itself.
var knownFields = [...]string{"ServerID", "ServerName", "Address", "Exclusive", "Stopping",
	"Version", "LeaseID", "HostName", "ServerLabels", "Incarnation"}

// ErrMalformed is returned by Decode when a value is not a valid session
// record: not JSON, a field of the wrong type, or a missing ServerID or
// ServerName.
var ErrMalformed = errors.New("session: malformed session record")

// MaxValueSize is the largest encoded record Decode accepts, in bytes.
const MaxValueSize = 64 << 10

// Encode returns the JSON record, unknown fields included.
func (s Session) Encode() ([]byte, error) {
	type plain Session // no methods, so no recursion
	b, err := json.Marshal(plain(s))
	if err != nil || len(s.extra) == 0 {
		return b, errors.Wrap(err, "session: encode")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errors.Wrap(err, "session: encode")
	}
	for k, v := range s.extra {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	b, err = json.Marshal(m)
	return b, errors.Wrap(err, "session: encode")
}

// Decode parses a JSON record. Unknown fields are kept and written back by
// Encode. A value that is not a record is an error that wraps ErrMalformed.
func Decode(b []byte) (Session, error) {
	var s Session
	if len(b) == 0 {
		return s, errors.Wrap(ErrMalformed, "empty value")
	}
	if len(b) > MaxValueSize {
		return s, errors.Wrapf(ErrMalformed, "value of %d bytes exceeds %d", len(b), MaxValueSize)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return s, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	type plain Session
	if err := json.Unmarshal(b, (*plain)(&s)); err != nil {
		return Session{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	for k := range m {
		// encoding/json matches field names case-insensitively: a key that
		// folds to a known field was decoded into it and is not extra.
		if isKnownField(k) {
			delete(m, k)
		}
	}
	if len(m) > 0 {
		s.extra = m
	}
	if s.ServerID <= 0 {
		return Session{}, errors.Wrapf(ErrMalformed, "ServerID (%d) must be > 0", s.ServerID)
	}
	if s.ServerName == "" {
		return Session{}, errors.Wrap(ErrMalformed, "ServerName is empty")
	}
	return s, nil
}

func isKnownField(k string) bool {
	for _, f := range knownFields {
		if strings.EqualFold(f, k) {
			return true
		}
	}
	return false
}

// Extra returns the raw JSON of a field this version does not know, and
// whether the record had it.
func (s Session) Extra(field string) (json.RawMessage, bool) {
	v, ok := s.extra[field]
	return v, ok
}

// SameProcess reports whether a and b are records of one process start:
// the same ServerID and Incarnation or, when either has no Incarnation
// (a record written by Milvus), the same ServerID and LeaseID.
func SameProcess(a, b Session) bool {
	if a.ServerID != b.ServerID {
		return false
	}
	if a.Incarnation == "" || b.Incarnation == "" {
		return a.LeaseID == b.LeaseID
	}
	return a.Incarnation == b.Incarnation
}

// NewIncarnation returns a random incarnation: 16 lower-case hex digits.
func NewIncarnation() string {
	var b [8]byte
	_, _ = crand.Read(b[:]) // never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// String is short, for logs.
func (s Session) String() string {
	return s.ServerName + "-" + strconv.FormatInt(s.ServerID, 10) + "@" + s.Address
}
