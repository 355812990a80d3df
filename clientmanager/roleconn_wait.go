package clientmanager

import (
	"context"

	"github.com/cockroachdb/errors"
)

// WaitForRole waits until at least n nodes of role are available (listed,
// connected, not stopping) and returns nil then, at once if they are
// already. It returns ctx's error when ctx ends first, an error wrapping
// ErrClosed when the manager is or gets closed, and one wrapping
// ErrUnknownRole at once when role is not a dependency, and as soon as etcd
// refuses the manager's credentials or permissions for the role's sessions
// an error naming etcd and the cause (session.IsEtcdAuthError holds for
// it; see session.Watcher.Err). It wakes on the role's changes
// (WatchClients), never polls.
func (m *Manager) WaitForRole(ctx context.Context, role string, n int) error {
	if n < 0 {
		return errors.Newf("clientmanager: WaitForRole: n (%d) must be ≥ 0", n)
	}
	m.mu.Lock()
	r, known := m.roles[role]
	closed := m.closed
	m.mu.Unlock()
	switch {
	case closed:
		return &NodeError{Role: role, Err: ErrClosed}
	case !known:
		return &NodeError{Role: role, Err: ErrUnknownRole}
	case len(m.GetClients(role)) >= n:
		return nil
	}
	if err := r.refusal(); err != nil { // etcd refuses the credentials: see etcd_access.go
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer r.cancelOnRefusal(wctx, cancel)()
	for range m.WatchClients(wctx, role) {
		// Each change is published in the snapshot before it is sent.
		if len(m.GetClients(role)) >= n {
			return nil
		}
	}
	if err := r.refusal(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return &NodeError{Role: role, Err: ErrClosed}
}
