package balancer

import (
	"context"
	"math"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeStats is LookAside's view of one node, for status pages.
type NodeStats struct {
	InFlight     int64         // calls in flight from this process
	ResponseTime time.Duration // latency average; 0 if none or expired
	ServiceTime  time.Duration // reported service time; 0 if none or expired
	Queued       int64         // reported queue length; 0 if none or expired
	Executing    int64         // reported executing requests; 0 if none or expired
	Trusted      bool          // whether Score is used (see LookAside)
	Score        float64       // C3 score, nanoseconds; 0 if not trusted
}

// ReportCost implements CostReporter: it records the cost node id reported
// with a response. Negative values are taken as zero.
func (l *LookAside) ReportCost(id int64, cost CostMetrics) {
	n := l.nodes.getOrCreate(id, l.clock)
	n.svcTime.Store(int64(max(cost.ServiceTime, 0)))
	n.queued.Store(max(cost.Queued, 0))
	n.executing.Store(max(cost.Executing, 0))
	n.reportedAt.Store(l.clock.Now().UnixNano())
}

// observe folds the outcome of a call into the node's latency average.
func (l *LookAside) observe(n *node, latency time.Duration, err error) {
	if err != nil {
		if isCanceled(err) {
			return // the caller gave up: nothing learned about the node
		}
		latency = max(latency, l.cfg.ErrorPenalty)
	}
	sample := float64(max(latency, 0))
	now := l.clock.Now().UnixNano()
	prev := n.lastSample.Swap(now)
	if prev == 0 || now-prev > int64(l.cfg.CostExpiry) {
		n.ewma.Store(math.Float64bits(sample)) // no history, or stale: restart
		return
	}
	a := l.cfg.Smoothing
	for {
		old := n.ewma.Load()
		v := a*sample + (1-a)*math.Float64frombits(old)
		if n.ewma.CompareAndSwap(old, math.Float64bits(v)) {
			return
		}
	}
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
}

// Stats returns LookAside's view of node id; ok is false for a node it does
// not know.
func (l *LookAside) Stats(id int64) (st NodeStats, ok bool) {
	n := l.nodes.get(id)
	if n == nil {
		return NodeStats{}, false
	}
	now := l.clock.Now().UnixNano()
	expiry := int64(l.cfg.CostExpiry)
	st.InFlight = n.inflight.Load()
	if last := n.lastSample.Load(); last != 0 && now-last <= expiry {
		st.ResponseTime = time.Duration(math.Float64frombits(n.ewma.Load()))
	}
	if at := n.reportedAt.Load(); at != 0 && now-at <= expiry {
		st.ServiceTime = time.Duration(n.svcTime.Load())
		st.Queued = n.queued.Load()
		st.Executing = n.executing.Load()
	}
	st.Score, st.Trusted = l.score(n, st.InFlight, now)
	return st, true
}
