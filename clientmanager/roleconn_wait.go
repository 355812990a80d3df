package clientmanager

import (
	"context"

	"github.com/cockroachdb/errors"
)

// WaitForRole waits until at least n nodes of role are available (listed,
// connected, not stopping) and returns nil then, at once if they are
// already. It returns ctx's error when ctx ends first, an error wrapping
// ErrClosed when the manager is or gets closed, and one wrapping
// ErrUnknownRole at once when role is not a dependency. It wakes on the
// role's changes (WatchClients), never polls.
func (m *Manager) WaitForRole(ctx context.Context, role string, n int) error {
	if n < 0 {
		return errors.Newf("clientmanager: WaitForRole: n (%d) must be ≥ 0", n)
	}
	m.mu.Lock()
	_, known := m.roles[role]
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
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range m.WatchClients(wctx, role) {
		// Each change is published in the snapshot before it is sent.
		if len(m.GetClients(role)) >= n {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return &NodeError{Role: role, Err: ErrClosed}
}
