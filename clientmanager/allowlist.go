package clientmanager

import (
	"net"
	"net/netip"

	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/session"
)

// The reason label values of clientmanager_sessions_rejected_total.
const (
	// rejectOutsideNetworks: the record's address is an IP outside
	// Config.AllowedNetworks.
	rejectOutsideNetworks = "outside_networks"
	// rejectMalformedAddress: the record's address is not host:port.
	rejectMalformedAddress = "malformed_address"
)

// admit reports whether the manager may connect to s, a record of the
// role's watcher: with Config.AllowedNetworks set, a record whose address
// is an IP outside them, or is not host:port, is refused before any
// connector exists, so it is never dialed, never listed, never online.
// Each refused record (a process at an address) is logged once, naming
// the address and the networks, and counted in
// clientmanager_sessions_rejected_total. An address given as a host name
// passes: the default dialer checks every address it resolves to (see
// networkDialOptions).
//
// It runs on the role's goroutine, which alone reads and writes
// r.rejected.
func (r *role) admit(s session.Session) bool {
	nets := r.m.cfg.AllowedNetworks
	if len(nets) == 0 {
		return true
	}
	reason := addressReason(nets, s.Address)
	if reason == "" {
		delete(r.rejected, s.ServerID)
		return true
	}
	if r.rejected[s.ServerID] == s.Address {
		return false // refused already
	}
	if r.rejected == nil {
		r.rejected = make(map[int64]string)
	}
	r.rejected[s.ServerID] = s.Address
	r.m.metrics.sessionsRejected.WithLabelValues(r.name, reason).Inc()
	r.log.Warn("session skipped: its address is outside AllowedNetworks",
		zap.Int64("node_id", s.ServerID), zap.String("address", s.Address),
		zap.Stringers("allowed_networks", nets), zap.String("reason", reason))
	return false
}

// forget drops what admit remembers of a process that left.
func (r *role) forget(id int64) { delete(r.rejected, id) }

// addressReason returns why address is refused by nets, or "" when it is
// allowed or a host name (left to the dialer).
func addressReason(nets []netip.Prefix, address string) string {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return rejectMalformedAddress
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "" // a host name: its resolved addresses are checked when dialing
	}
	ip = ip.Unmap()
	for _, p := range nets {
		if p.Contains(ip) {
			return ""
		}
	}
	return rejectOutsideNetworks
}
