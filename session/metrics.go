package session

import (
	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the package's Prometheus collectors. Make one per registerer
// with NewMetrics and pass it to every Register and NewWatcher of the
// process with WithMetrics.
type Metrics struct {
	// Registration.
	Registrations   *prometheus.CounterVec // role: successful registrations (first and re-)
	LeasesLost      *prometheus.CounterVec // role
	KeepAliveFailed *prometheus.CounterVec // role: keepalive streams that broke
	Disconnects     *prometheus.CounterVec // role: local lease deadline passed without an acknowledgement
	ReregisterFails *prometheus.CounterVec // role: failed re-registration attempts
	ActiveTerms     *prometheus.CounterVec // role: active terms begun (exclusive roles)
	Fenced          *prometheus.CounterVec // role: active terms ended (exclusive roles)
	State           *prometheus.GaugeVec   // role: the registration's State (1 Connected … 4 Closed)
	// Discovery.
	Events         *prometheus.CounterVec // role, type: add|update|del
	Resyncs        *prometheus.CounterVec // role, reason
	MalformedSkip  *prometheus.CounterVec // role
	FilteredSkip   *prometheus.CounterVec // role: sessions outside the version range
	KnownSessions  *prometheus.GaugeVec   // role
	LastSyncSecond *prometheus.GaugeVec   // role: unix time of the last successful list or watch response
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). It fails if reg already holds collectors of these names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := newMetrics()
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.Registrations, m.LeasesLost, m.KeepAliveFailed,
		m.Disconnects, m.ReregisterFails, m.ActiveTerms, m.Fenced, m.State,
		m.Events, m.Resyncs, m.MalformedSkip, m.FilteredSkip, m.KnownSessions, m.LastSyncSecond} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Wrap(err, "session: register metrics")
		}
	}
	return m, nil
}

func nopMetrics() *Metrics { return newMetrics() }

func newMetrics() *Metrics {
	const ns, sub = "clientmanager", "session"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	return &Metrics{
		Registrations:   counter("registrations_total", "Sessions registered, first and after a lost lease.", "role"),
		LeasesLost:      counter("leases_lost_total", "Leases found lost by a registration.", "role"),
		KeepAliveFailed: counter("keepalive_failures_total", "Keepalive streams that broke and were re-established.", "role"),
		Disconnects:     counter("disconnects_total", "Times the local lease deadline passed without a keepalive acknowledgement.", "role"),
		ReregisterFails: counter("reregister_failures_total", "Failed attempts to register again after a lost lease.", "role"),
		ActiveTerms:     counter("active_terms_total", "Terms begun as the active process of an exclusive role.", "role"),
		Fenced:          counter("fenced_total", "Active terms ended (fenced) by a missed deadline, a lost key or lease, or Close.", "role"),
		State:           gauge("registration_state", "State of a registration: 1 Connected, 2 Disconnected, 3 Reregistering, 4 Closed.", "role"),
		Events:          counter("watch_events_total", "Session events emitted by watchers.", "role", "type"),
		Resyncs:         counter("watch_resyncs_total", "Re-lists after a broken watch.", "role", "reason"),
		MalformedSkip:   counter("malformed_values_total", "Session values skipped as malformed: not a record, another role's record, or no Address.", "role"),
		FilteredSkip:    counter("filtered_sessions_total", "Sessions skipped because their version is outside the range.", "role"),
		KnownSessions:   gauge("known_sessions", "Sessions a watcher currently knows.", "role"),
		LastSyncSecond:  gauge("last_sync_timestamp_seconds", "Unix time of a watcher's last successful list or watch response.", "role"),
	}
}
