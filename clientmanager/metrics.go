package clientmanager

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// metrics are the manager's Prometheus collectors (docs/metrics.md lists
// them with their labels and meaning):
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
//	clientmanager_sessions_rejected_total{role,reason}  session records skipped before dialing (AllowedNetworks)
//	clientmanager_node_state{role,node_id}            per listed node: its NodeState (0 connecting … 5 gone)
//	clientmanager_node_breaker_state{role,node_id}    per listed node: 0 closed, 1 open, 2 half-open
//	clientmanager_node_in_flight{role,node_id}        per listed node: calls in progress
//	clientmanager_node_latency_ewma_seconds{role,node_id}  per listed node: moving average of attempt latency
//
// The per-role children of the vectors are resolved once per label set and
// kept (see counters), so the call path does not hash labels or take the
// vector's lock. The per-node series are read from Status when scraped
// (see nodeCollector): they exist exactly while their node is listed, so a
// node that leaves leaves no series behind.
type metrics struct {
	dials     *counters
	nodes     *gauges
	calls     *counters
	attempts  *counters
	fastFails *counters

	unhealthyFails     *counters
	breakerTransitions *counters
	bulkheadRejections *counters
	budgetExhausted    *counters
	pushbackWaits      *counters
	pushbackStops      *counters
	sessionsRejected   *counters

	perNode *nodeCollector
}

// newMetrics makes the collectors and registers them with reg (nil: not
// registered). The per-node series stay empty until bindStatus.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "clientmanager"
	counter := func(name, help string, labels ...string) *counters {
		return newCounters(prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels))
	}
	m := &metrics{
		dials: counter("dials_total", "Dial attempts to nodes, by result (ok, error, canceled).", "role", "result"),
		nodes: newGauges(prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "nodes",
			Help: "Nodes the manager knows, by state."}, []string{"role", "state"})),
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
		sessionsRejected: counter("sessions_rejected_total",
			"Session records skipped before dialing because their address is outside AllowedNetworks, by reason.", "role", "reason"),

		perNode: newNodeCollector(ns),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.dials.vec, m.nodes.vec, m.calls.vec, m.attempts.vec, m.fastFails.vec,
		m.unhealthyFails.vec, m.breakerTransitions.vec, m.bulkheadRejections.vec, m.budgetExhausted.vec,
		m.pushbackWaits.vec, m.pushbackStops.vec, m.sessionsRejected.vec, m.perNode} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Wrap(err, "clientmanager: register metrics")
		}
	}
	return m, nil
}

// bindStatus gives the per-node series their source: the manager's Status.
func (m *metrics) bindStatus(status func() []NodeStatus) { m.perNode.status.Store(&status) }

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

// maxLabels is the largest number of labels of a cached vector.
const maxLabels = 2

type labelKey [maxLabels]string

// children caches the children of a metric vector by label values: the
// first use of a label set resolves it with the vector's WithLabelValues,
// later uses are one lock-free map lookup without allocation. The map is
// copied on each new label set (roles × a few values: a handful).
type children[T any] struct {
	resolve func(...string) T
	mu      sync.Mutex // serialises the copies
	m       atomic.Pointer[map[labelKey]T]
}

func (c *children[T]) get(lvs []string) T {
	var k labelKey
	n := copy(k[:], lvs)
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	return c.add(k, n)
}

// add resolves the child of the first n values of k, once. It is apart
// from get so that get's arguments do not escape.
func (c *children[T]) add(k labelKey, n int) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[labelKey]T, 1+lenOf(old))
	if old != nil {
		for kk, v := range *old {
			next[kk] = v
		}
	}
	v := c.resolve(k[:n]...)
	next[k] = v
	c.m.Store(&next)
	return v
}

func lenOf[T any](m *map[labelKey]T) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// cachedVec is a metric vector V (a CounterVec or a GaugeVec) of at most
// maxLabels labels whose children T are cached (see children).
type cachedVec[V prometheus.Collector, T any] struct {
	vec V
	children[T]
}

// WithLabelValues returns the child of lvs, resolved on its first use only.
// Like the vector's own, it panics on a wrong number of values: every call
// site passes a fixed number.
func (c *cachedVec[V, T]) WithLabelValues(lvs ...string) T { return c.get(lvs) }

type (
	counters = cachedVec[*prometheus.CounterVec, prometheus.Counter]
	gauges   = cachedVec[*prometheus.GaugeVec, prometheus.Gauge]
)

func newCounters(vec *prometheus.CounterVec) *counters {
	return &counters{vec: vec, children: children[prometheus.Counter]{resolve: vec.WithLabelValues}}
}

func newGauges(vec *prometheus.GaugeVec) *gauges {
	return &gauges{vec: vec, children: children[prometheus.Gauge]{resolve: vec.WithLabelValues}}
}

// nodeCollector exports one series per listed node and figure, read from
// the manager's Status at each scrape: nothing is stored per node, so
// nothing is left when a node leaves the registry.
type nodeCollector struct {
	status                          atomic.Pointer[func() []NodeStatus]
	state, breaker, inFlight, laten *prometheus.Desc
}

func newNodeCollector(ns string) *nodeCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "node", name), help, []string{"role", "node_id"}, nil)
	}
	return &nodeCollector{
		state: desc("state",
			"State of a listed node: 0 connecting, 1 online, 2 suspect, 3 unreachable, 4 stopping, 5 gone."),
		breaker:  desc("breaker_state", "State of a listed node's circuit breaker: 0 closed, 1 open, 2 half-open."),
		inFlight: desc("in_flight", "Calls in progress on a listed node's connections."),
		laten: desc("latency_ewma_seconds",
			"Exponentially weighted moving average of a listed node's attempt latencies; 0 before the first attempt."),
	}
}

func (n *nodeCollector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{n.state, n.breaker, n.inFlight, n.laten}
}

// Describe implements prometheus.Collector.
func (n *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range n.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (n *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	status := n.status.Load()
	if status == nil {
		return
	}
	for _, s := range (*status)() {
		id := strconv.FormatInt(s.NodeID, 10)
		for _, f := range [...]struct {
			d *prometheus.Desc
			v float64
		}{
			{n.state, float64(s.State)},
			{n.breaker, float64(s.Breaker)},
			{n.inFlight, float64(s.InFlight)},
			{n.laten, s.LatencyEWMA.Seconds()},
		} {
			m, err := prometheus.NewConstMetric(f.d, prometheus.GaugeValue, f.v, s.Role, id)
			if err != nil {
				m = prometheus.NewInvalidMetric(f.d, err)
			}
			ch <- m
		}
	}
}
