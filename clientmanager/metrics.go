package clientmanager

import (
	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// metrics are the manager's Prometheus collectors:
//
//	clientmanager_dials_total{role,result}      dial attempts; result ok|error|canceled
//	clientmanager_nodes{role,state}             nodes known, by NodeState
//	clientmanager_calls_total{role,code}        Invoke and InvokeNode calls, by final gRPC code
//	clientmanager_call_attempts_total{role}     attempts made by those calls
//	clientmanager_fast_fails_total{role}        calls refused at once: no node available
//	clientmanager_unhealthy_fails_total{role}   calls refused at once: ErrAllNodesUnhealthy
//	clientmanager_breaker_transitions_total{role,to}  circuit breaker state changes; to closed|open|half-open
//	clientmanager_bulkhead_rejections_total{role}     attempts a node's bulkhead turned away (busy and not queued, full, or MaxWait)
//	clientmanager_retry_budget_exhausted_total{role}  retries not made because the role's budget was spent
//	clientmanager_pushback_waits_total{role}          retries that waited for a server's retry pushback
//	clientmanager_pushback_stops_total{role}          retries not made because the server's pushback said so
type metrics struct {
	dials     *prometheus.CounterVec
	nodes     *prometheus.GaugeVec
	calls     *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	fastFails *prometheus.CounterVec

	unhealthyFails     *prometheus.CounterVec
	breakerTransitions *prometheus.CounterVec
	bulkheadRejections *prometheus.CounterVec
	budgetExhausted    *prometheus.CounterVec
	pushbackWaits      *prometheus.CounterVec
	pushbackStops      *prometheus.CounterVec
}

// newMetrics makes the collectors and registers them with reg (nil: not
// registered).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "clientmanager"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	m := &metrics{
		dials: counter("dials_total", "Dial attempts to nodes, by result (ok, error, canceled).", "role", "result"),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "nodes",
			Help: "Nodes the manager knows, by state."}, []string{"role", "state"}),
		calls:     counter("calls_total", "Calls made with Invoke or InvokeNode, by final gRPC code.", "role", "code"),
		attempts:  counter("call_attempts_total", "Attempts made by Invoke and InvokeNode.", "role"),
		fastFails: counter("fast_fails_total", "Calls refused at once because no node was available.", "role"),

		unhealthyFails: counter("unhealthy_fails_total",
			"Calls refused at once because every available node's circuit breaker refused them.", "role"),
		breakerTransitions: counter("breaker_transitions_total", "Circuit breaker state changes, by new state.", "role", "to"),
		bulkheadRejections: counter("bulkhead_rejections_total",
			"Attempts turned away by a node's bulkhead (busy and not queued, queue full, or wait too long).", "role"),
		budgetExhausted: counter("retry_budget_exhausted_total",
			"Retries not made because the role's retry budget was spent.", "role"),
		pushbackWaits: counter("pushback_waits_total", "Retries that waited for a server's retry pushback.", "role"),
		pushbackStops: counter("pushback_stops_total",
			"Retries not made because a server's retry pushback was negative or malformed.", "role"),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.dials, m.nodes, m.calls, m.attempts, m.fastFails,
		m.unhealthyFails, m.breakerTransitions, m.bulkheadRejections, m.budgetExhausted, m.pushbackWaits, m.pushbackStops} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Wrap(err, "clientmanager: register metrics")
		}
	}
	return m, nil
}

// nodeState moves one node of role from one state to another; noState on
// either side adds or removes it.
func (m *metrics) nodeState(role string, from, to NodeState) {
	if from != noState {
		m.nodes.WithLabelValues(role, from.String()).Dec()
	}
	if to != noState {
		m.nodes.WithLabelValues(role, to.String()).Inc()
	}
}

func (m *metrics) dial(role string, err error, canceled bool) {
	result := "ok"
	switch {
	case canceled:
		result = "canceled"
	case err != nil:
		result = "error"
	}
	m.dials.WithLabelValues(role, result).Inc()
}

func (m *metrics) call(role string, code codes.Code) {
	m.calls.WithLabelValues(role, code.String()).Inc()
}
