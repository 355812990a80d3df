package session

import (
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/cockroachdb/errors"

	"github.com/coordkit/clientmanager/retry"
)

// WatchConfig says which sessions a Watcher follows and how it recovers.
type WatchConfig struct {
	// Role is the role whose sessions are watched, such as "querynode".
	// Required: non-empty, without '/' or spaces.
	Role string
	// VersionRange is a semantic version constraint such as ">= 2.4, < 3"
	// (github.com/Masterminds/semver/v3 syntax). Sessions whose Version is
	// outside it, or is not a version at all, are invisible: never added,
	// and an update that moves a session out of the range is a Del, into
	// the range an Add. Pre-releases match only a constraint that names a
	// pre-release. Default "": every version.
	VersionRange string
	// ResyncBackoff paces the re-lists after a broken watch; the watcher
	// never gives up. The first re-list after a break waits a jittered
	// Delay(1) too, so that watchers of a restarted etcd do not re-list in
	// one herd. Default 100 ms × 1.6 up to 5 s, full jitter.
	ResyncBackoff retry.Backoff
	// ListPageSize is how many keys each request of a list reads: the
	// initial list and every re-list read the role page by page at one
	// revision, each request bounded by Config.RequestTimeout, so a list
	// stays within the timeout however many sessions the role has. etcd
	// (3.6) counts the keys left in the range on every page, which makes
	// small pages costly for a large role: at 10,000 keys a page (about
	// 3 MB) a million sessions take a hundred requests. Default 10000.
	// Must be ≥ 1. List uses the default.
	ListPageSize int
	// SubscriberBuffer is the capacity of each subscriber's channel, in
	// events. Behind it a subscriber's pending changes coalesce to each
	// node's latest state, so a slow reader costs memory per node, not per
	// change. Default 64. Zero: unbuffered channels. Must be ≥ 0.
	SubscriberBuffer int
	// ProgressInterval is how long the watch may stay silent before the
	// watcher asks etcd for a progress notification, which keeps LastSync
	// fresh on a quiet role. After three silent intervals it reads the
	// store's revision: if nothing changed, its knowledge is current (and
	// LastSync moves); otherwise, or if etcd does not answer, the watch is
	// stale and the watcher re-lists. Default 5 s. Zero: never asks, and a
	// silent watch is trusted until it breaks. Must be ≥ 0.
	ProgressInterval time.Duration
}

// DefaultWatchConfig returns the defaults documented on each field, for
// role.
func DefaultWatchConfig(role string) WatchConfig {
	b := retry.DefaultBackoff()
	b.Max = 5 * time.Second
	return WatchConfig{
		Role:             role,
		ResyncBackoff:    b,
		ListPageSize:     10000,
		SubscriberBuffer: 64,
		ProgressInterval: 5 * time.Second,
	}
}

// Validate reports the first field that is out of range.
func (c WatchConfig) Validate() error {
	if err := ValidateRole(c.Role); err != nil {
		return errors.Wrap(err, "session: Role")
	}
	if _, err := parseVersionRange(c.VersionRange); err != nil {
		return err
	}
	switch {
	case c.ListPageSize < 1:
		return errors.Newf("session: ListPageSize (%d) must be ≥ 1", c.ListPageSize)
	case c.SubscriberBuffer < 0:
		return errors.Newf("session: SubscriberBuffer (%d) must be ≥ 0", c.SubscriberBuffer)
	case c.ProgressInterval < 0:
		return errors.Newf("session: ProgressInterval (%s) must be ≥ 0", c.ProgressInterval)
	}
	if err := c.ResyncBackoff.Validate(); err != nil {
		return errors.Wrap(err, "session: ResyncBackoff")
	}
	return nil
}

// versionFilter decides which sessions a watcher shows. The zero value
// shows every session.
type versionFilter struct {
	c *semver.Constraints
}

func parseVersionRange(r string) (versionFilter, error) {
	if r == "" {
		return versionFilter{}, nil
	}
	c, err := semver.NewConstraint(r)
	if err != nil {
		return versionFilter{}, errors.Wrapf(err, "session: VersionRange (%q) is not a version constraint", r)
	}
	return versionFilter{c: c}, nil
}

// allows reports whether a session of version v is visible.
func (f versionFilter) allows(v string) bool {
	if f.c == nil {
		return true
	}
	ver, err := semver.NewVersion(v)
	if err != nil {
		return false
	}
	return f.c.Check(ver)
}
