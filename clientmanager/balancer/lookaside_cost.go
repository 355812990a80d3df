package balancer

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeStats is LookAside's view of one node, for status pages.
type NodeStats struct {
	InFlight     int64         // calls in flight from this process
	ResponseTime time.Duration // latency average; 0 if none or expired
	Trusted      bool          // whether Score is used (see LookAside)
	Score        float64       // C3 score, nanoseconds; 0 if not trusted
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
		n.latency.Set(sample) // no history, or stale: restart
		return
	}
	n.latency.Observe(sample, l.cfg.Smoothing)
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
	st.InFlight = n.inflight.Load()
	if last := n.lastSample.Load(); last != 0 && now-last <= int64(l.cfg.CostExpiry) {
		st.ResponseTime = time.Duration(n.latency.Value())
	}
	st.Score, st.Trusted = l.score(n, st.InFlight, now)
	return st, true
}
