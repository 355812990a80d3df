package clientmanager

import (
	"cmp"
	"slices"
	"time"
)

// DiscoveryStatus is what the watcher of one dependency knows of etcd.
type DiscoveryStatus struct {
	Role string
	// Revision is the etcd revision the role's listed nodes are current
	// at: every change up to it has been applied. Zero before the first
	// list.
	Revision int64
	// LastSync is the time of the watcher's last successful list, watch
	// response or progress notification; zero before the first. Its age
	// is how stale the role's node set may be.
	LastSync time.Time
}

// Discovery returns the discovery status of every dependency, ordered by
// role.
func (m *Manager) Discovery() []DiscoveryStatus {
	m.mu.Lock()
	out := make([]DiscoveryStatus, 0, len(m.roles))
	for name, r := range m.roles {
		out = append(out, DiscoveryStatus{Role: name, Revision: r.w.Revision(), LastSync: r.w.LastSync()})
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b DiscoveryStatus) int { return cmp.Compare(a.Role, b.Role) })
	return out
}
