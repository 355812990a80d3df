package clientmanager

import (
	"slices"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
)

// GetClients returns the available nodes of role (listed, connected and
// not stopping), ordered by ServerID. The slice is shared: do not change
// it. It is lock-free and does not allocate.
func (m *Manager) GetClients(role string) []*Client {
	if v := m.reg.load().role(role); v != nil {
		return v.clients
	}
	return nil
}

// GetClient returns the available node of role that the role's balancer
// picks, or an error wrapping ErrServiceUnavailable (ErrClosed after
// Close). It is lock-free and, when a node is available, does not
// allocate, but once after the role's nodes change, when the balancer
// caches where their states are (see package balancer).
func (m *Manager) GetClient(role string) (*Client, error) {
	s := m.reg.load()
	v := s.role(role)
	if v == nil || len(v.ids) == 0 {
		return nil, s.unavailable(v, role)
	}
	var (
		i  int
		ok bool
	)
	// The index of the pick in ids is that of its Client in clients: no
	// search by ID. The default policy is called without an interface.
	switch b := v.bal.(type) {
	case *balancer.PowerOfTwo:
		i, ok = b.PickIndex(v.ids, nil)
	case balancer.IndexPicker:
		i, ok = b.PickIndex(v.ids, nil)
	default:
		id, picked := v.bal.Pick(v.ids, nil)
		if c := v.client(id); picked && c != nil {
			return c, nil
		}
		return nil, v.unavailable
	}
	if ok && uint(i) < uint(len(v.clients)) {
		return v.clients[i], nil
	}
	return nil, v.unavailable
}

// ClientByID returns the node if it is available, or a *NodeError wrapping
// ErrServiceUnavailable (ErrClosed after Close). When one process serves
// several roles under nodeID, it returns one of their available Clients:
// the one available first, as long as it stays available, else the first
// by role name; use GetClients(role) for a given role. It is lock-free
// and, when the node is available, does not allocate.
func (m *Manager) ClientByID(nodeID int64) (*Client, error) {
	s := m.reg.load()
	if c := s.nodes[nodeID]; c != nil {
		return c, nil
	}
	if s.closed {
		return nil, ErrClosed
	}
	return nil, nodeErr(nodeID, ErrServiceUnavailable)
}

// IsOnline reports whether the node is available: listed, connected and
// not stopping — in any role, when one process serves several roles under
// nodeID. It is lock-free and does not allocate.
func (m *Manager) IsOnline(nodeID int64) bool {
	_, ok := m.reg.load().nodes[nodeID]
	return ok
}

// IsRoleOnline reports whether some node of role is available. It is
// lock-free and does not allocate.
func (m *Manager) IsRoleOnline(role string) bool {
	v := m.reg.load().role(role)
	return v != nil && len(v.ids) > 0
}

// client returns the view's client of id, or nil.
func (v *roleView) client(id int64) *Client {
	if i, ok := slices.BinarySearch(v.ids, id); ok {
		return v.clients[i]
	}
	return nil
}

// unavailable is the error for a role with no available node.
func (s *snapshot) unavailable(v *roleView, role string) error {
	switch {
	case s.closed:
		return ErrClosed
	case v != nil:
		return v.unavailable
	}
	return unavailableForRole(role)
}
