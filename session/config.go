package session

import (
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/coordkit/clientmanager/retry"
)

// LostPolicy says what a Registration does when its lease is lost.
type LostPolicy int

const (
	// Reregister grants a new lease and puts the same ServerID again, with
	// jittered backoff, until it succeeds or the Registration is closed.
	Reregister LostPolicy = iota
	// Exit stops and reports: Done is closed and Err returns ErrLeaseLost,
	// for deployments that fence a process whose session is gone.
	Exit
)

// String returns "reregister" or "exit".
func (p LostPolicy) String() string {
	switch p {
	case Reregister:
		return "reregister"
	case Exit:
		return "exit"
	}
	return "LostPolicy(" + strconv.Itoa(int(p)) + ")"
}

// Config says where sessions live and how they are kept.
type Config struct {
	// RootPath is the etcd prefix of the cluster's metadata, without a
	// trailing slash. Default "by-dev/meta". Must not be empty.
	RootPath string
	// TTL is the lease's time to live, in whole seconds. Default 15 s.
	// Must be ≥ 1 s.
	TTL time.Duration
	// LostPolicy is what happens when the lease is lost. Default Reregister.
	LostPolicy LostPolicy
	// Retry bounds ServerID allocation and each etcd request of
	// registration. Default retry.DefaultPolicy() with 10 attempts.
	Retry retry.Policy
	// ReregisterBackoff paces re-registration after a lost lease, which
	// never gives up while the registration is open. Default 100 ms × 1.6
	// up to 5 s, full jitter.
	ReregisterBackoff retry.Backoff
	// RequestTimeout bounds each etcd request. Default 5 s. Must be > 0.
	RequestTimeout time.Duration
	// FenceMargin is taken off the lease's deadline as this process sees it
	// (last acknowledged keepalive + TTL): at that moment the registration
	// is Disconnected and an exclusive role's active process is fenced,
	// before etcd can expire the lease and give the role to a standby. The
	// margin used is at least half the slowest recent etcd round trip (an
	// estimate of one-way latency) and at most TTL/4. Default 0: max(1 s,
	// TTL/10). Must be ≥ 0.
	FenceMargin time.Duration
	// ReplaceStale, when true (the default), revokes, on the first
	// registration of a process, the lease of another session of the same
	// role registered at this process's Address by another process start
	// (another Incarnation): a process restarted on the same address
	// replaces its own stale key instead of waiting for it to expire or
	// failing on it.
	ReplaceStale bool
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config {
	rp := retry.DefaultPolicy()
	rp.Attempts = 10
	rb := retry.DefaultBackoff()
	rb.Max = 5 * time.Second
	return Config{
		RootPath:          "by-dev/meta",
		TTL:               15 * time.Second,
		LostPolicy:        Reregister,
		Retry:             rp,
		ReregisterBackoff: rb,
		RequestTimeout:    5 * time.Second,
		ReplaceStale:      true,
	}
}

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	switch {
	case strings.TrimRight(c.RootPath, "/") == "":
		return errors.Newf("session: RootPath (%q) must not be empty", c.RootPath)
	case c.TTL < time.Second:
		return errors.Newf("session: TTL (%s) must be ≥ 1s", c.TTL)
	case c.TTL%time.Second != 0:
		return errors.Newf("session: TTL (%s) must be a whole number of seconds", c.TTL)
	case c.LostPolicy != Reregister && c.LostPolicy != Exit:
		return errors.Newf("session: LostPolicy (%d) is unknown", int(c.LostPolicy))
	case c.FenceMargin < 0:
		return errors.Newf("session: FenceMargin (%s) must be ≥ 0", c.FenceMargin)
	case c.RequestTimeout <= 0:
		return errors.Newf("session: RequestTimeout (%s) must be > 0", c.RequestTimeout)
	}
	if err := c.Retry.Validate(); err != nil {
		return errors.Wrap(err, "session: Retry")
	}
	if err := c.ReregisterBackoff.Validate(); err != nil {
		return errors.Wrap(err, "session: ReregisterBackoff")
	}
	return nil
}

// Prefix returns <RootPath>/session, the folder of every session key.
func (c Config) Prefix() string { return path.Join(strings.TrimRight(c.RootPath, "/"), "session") }

// IDKey returns <RootPath>/session/id, the ServerID counter.
func (c Config) IDKey() string { return c.Prefix() + "/id" }

// Key returns the key of a non-exclusive session, or of an exclusive
// process's own (standby) key: <RootPath>/session/<role>-<ServerID>.
func (c Config) Key(role string, serverID int64) string {
	return c.Prefix() + "/" + role + "-" + strconv.FormatInt(serverID, 10)
}

// ActiveKey returns <RootPath>/session/<role>, the key the active process
// of an exclusive role holds.
func (c Config) ActiveKey(role string) string { return c.Prefix() + "/" + role }

// RolePrefix returns the prefix that every key of role starts with; keys
// under it that belong to another role (such as "<role>x-1") are told apart
// by ParseKey.
func (c Config) RolePrefix(role string) string { return c.Prefix() + "/" + role }

// ParseKey reports whether key is a session key of role, and its ServerID
// (0 for the active key of an exclusive role).
func (c Config) ParseKey(role, key string) (serverID int64, ok bool) {
	rest, found := strings.CutPrefix(key, c.RolePrefix(role))
	if !found {
		return 0, false
	}
	if rest == "" {
		return 0, true
	}
	digits, found := strings.CutPrefix(rest, "-")
	if !found || digits == "" {
		return 0, false
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// ErrInvalidRole is returned (marked, with errors.Is) by ValidateRole and
// by every check of a role name built on it.
var ErrInvalidRole = errors.New("session: invalid role")

// ValidateRole returns an error marked ErrInvalidRole unless role can name
// a role: it is non-empty, has no '/' or space (it is one segment of the
// registry's keys) and is not "id" (the segment of the ServerID counter).
// Every package checks role names with it.
func ValidateRole(role string) error {
	if role == "" || strings.ContainsAny(role, "/ ") || role == "id" {
		return errors.Mark(errors.Newf("role (%q) must be non-empty, without '/' or spaces, and not \"id\"", role),
			ErrInvalidRole)
	}
	return nil
}
