package startup

import (
	"time"

	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the package's Prometheus collectors. Make one per registerer
// with NewMetrics and pass it to every New of the process with WithMetrics.
type Metrics struct {
	// PhaseSeconds{role,phase} is how long the Runner of role stayed in
	// each phase of its lifecycle, set when the phase ends. The phases are
	// the states a Runner passes through once: Initializing (Init),
	// WaitingDependencies, Starting (Start), Registering and Stopping.
	PhaseSeconds *prometheus.GaugeVec
}

// phases are the states whose duration PhaseSeconds records.
var phases = [...]State{StateInitializing, StateWaitingDependencies, StateStarting, StateRegistering, StateStopping}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). It fails if reg already holds collectors of these names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		PhaseSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "clientmanager", Subsystem: "startup", Name: "phase_duration_seconds",
			Help: "Seconds a Runner stayed in a phase of its lifecycle (Initializing, WaitingDependencies, Starting, Registering, Stopping), set when the phase ends.",
		}, []string{"role", "phase"}),
	}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.PhaseSeconds); err != nil {
		return nil, errors.Wrap(err, "startup: register metrics")
	}
	return m, nil
}

// WithMetrics sets where the Runner's phase durations go; see NewMetrics.
// Default: nowhere.
func WithMetrics(m *Metrics) Option {
	return func(o *options) { o.metrics = m }
}

// phaseGauges are one Runner's children of PhaseSeconds, by state; nil for
// a state that is not a phase.
type phaseGauges [StateStopped + 1]prometheus.Gauge

// forRole resolves role's gauges; nil when m is nil.
func (m *Metrics) forRole(role string) *phaseGauges {
	if m == nil {
		return nil
	}
	var p phaseGauges
	for _, s := range phases {
		p[s] = m.PhaseSeconds.WithLabelValues(role, s.String())
	}
	return &p
}

// ended records that state s, a phase or not, lasted d.
func (p *phaseGauges) ended(s State, d time.Duration) {
	if p == nil || s < 0 || int(s) >= len(p) || p[s] == nil {
		return
	}
	p[s].Set(d.Seconds())
}
