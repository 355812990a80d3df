package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func healthRequest() *healthpb.HealthCheckRequest   { return &healthpb.HealthCheckRequest{} }
func healthResponse() *healthpb.HealthCheckResponse { return new(healthpb.HealthCheckResponse) }

// quantiles are the nearest-rank p50, p90, p99 and the max of d.
type quantiles struct{ p50, p90, p99, max time.Duration }

func quantilesOf(d []time.Duration) quantiles {
	if len(d) == 0 {
		return quantiles{}
	}
	d = slices.Clone(d)
	slices.Sort(d)
	at := func(p int) time.Duration { return d[max(0, (len(d)*p+99)/100-1)] }
	return quantiles{at(50), at(90), at(99), d[len(d)-1]}
}

func median(d []time.Duration) time.Duration { return quantilesOf(d).p50 }

// dur prints d with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// ratio prints a ÷ b.
func ratio(a, b time.Duration) string {
	if a == 0 && b == 0 {
		return "1.00× (0)"
	}
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// resamples is how many bootstrap resamples ratioCI draws.
const resamples = 2000

// ratioCI returns the 95 % bootstrap interval of a's quantile p (50, 99)
// ÷ b's: both are resampled with replacement, resamples times, and the
// 2.5th and 97.5th percentiles of the ratios are taken; none (0, 0) when
// b's quantile is 0 in more than a tenth of the resamples. Its seed is
// fixed: the same samples give the same interval.
func ratioCI(a, b []time.Duration, p int) (lo, hi float64) {
	if len(a) == 0 || len(b) == 0 {
		return 0, 0
	}
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(d, buf []time.Duration) time.Duration {
		for i := range buf {
			buf[i] = d[rng.IntN(len(d))]
		}
		slices.Sort(buf)
		return buf[max(0, (len(buf)*p+99)/100-1)]
	}
	bufA, bufB := make([]time.Duration, len(a)), make([]time.Duration, len(b))
	ratios := make([]float64, 0, resamples)
	for range resamples {
		if qb := draw(b, bufB); qb > 0 {
			ratios = append(ratios, float64(draw(a, bufA))/float64(qb))
		}
	}
	if len(ratios) < resamples*9/10 {
		return 0, 0 // b's quantile is 0 in too many resamples for an interval
	}
	slices.Sort(ratios)
	return ratios[len(ratios)*25/1000], ratios[(len(ratios)*975+999)/1000-1]
}

// ratioWithCI prints a's quantile p ÷ b's with its 95 % bootstrap
// interval.
func ratioWithCI(a, b []time.Duration, p int) string {
	qa, qb := quantilesOf(a), quantilesOf(b)
	r := ratio(qa.p50, qb.p50)
	if p == 99 {
		r = ratio(qa.p99, qb.p99)
	}
	lo, hi := ratioCI(a, b, p)
	if hi == 0 {
		return r
	}
	return fmt.Sprintf("%s [%.2f–%.2f]", r, lo, hi)
}

// table renders the figures as a Markdown table: ours ÷ the peer (plain;
// for the crash, the peer with a retry policy) at p50 and p99, each with
// its 95 % bootstrap interval.
func (h *harness) table(runs int, calls map[string]callCost) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d repetitions per system, interleaved; 3 replicas, 2 calling goroutines, embedded etcd\n\n", runs)
	b.WriteString("| figure | system | p50 | p90 | p99 | max | failed calls | ours ÷ peer (p50 / p99) [95 % bootstrap interval] |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	type fig struct {
		name    string
		get     func(*results) []time.Duration
		failed  func(*results) int64
		against string
		systems []string
	}
	all := []string{"ours", "peer", "peer+retry"}
	figs := []fig{
		{"Del → removed node no longer called", func(r *results) []time.Duration { return r.del },
			func(r *results) int64 { return r.failedDel }, "peer", all},
		{"the deregistration call itself", func(r *results) []time.Duration { return r.delCall }, nil, "peer", all[:2]},
		{"Add → first call reaches the new node (from registration's return)", func(r *results) []time.Duration { return r.addFirst },
			func(r *results) int64 { return r.failedAdd }, "peer", all},
		{"the registration call itself", func(r *results) []time.Duration { return r.addReg }, nil, "peer", all[:2]},
		{"crash → dead node no longer attempted", func(r *results) []time.Duration { return r.crash },
			func(r *results) int64 { return r.failedCrash }, "peer+retry", all},
		{"crash → dead node no longer picked (Invoke's attempts)", func(r *results) []time.Duration { return r.crashPicked },
			nil, "", all[:1]},
	}
	for _, f := range figs {
		var ref []time.Duration
		if f.against != "" {
			ref = f.get(h.res[f.against])
		}
		for _, sys := range f.systems {
			r := h.res[sys]
			q := quantilesOf(f.get(r))
			failed, cmp := "", ""
			if f.failed != nil {
				failed = fmt.Sprint(f.failed(r))
			}
			if sys == "ours" && f.against != "" {
				cmp = ratioWithCI(f.get(r), ref, 50) + " / " + ratioWithCI(f.get(r), ref, 99)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
				f.name, sys, dur(q.p50), dur(q.p90), dur(q.p99), dur(q.max), failed, cmp)
		}
	}
	b.WriteString("\n| one unary call, loopback | system | serial | parallel | allocs/op | ours ÷ peer (serial / parallel) |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	ref, hdr := calls["peer"], calls[peerHeaders]
	for _, sys := range append(all[:len(all):len(all)], peerHeaders) {
		c := calls[sys]
		cmp := ""
		switch sys {
		case "ours":
			cmp = fmt.Sprintf("%s / %s, %+d allocs", ratio(c.serial, ref.serial), ratio(c.parallel, ref.parallel), c.allocs-ref.allocs)
		case peerHeaders:
			o := calls["ours"]
			cmp = fmt.Sprintf("ours ÷ this: %s / %s, %+d allocs", ratio(o.serial, hdr.serial), ratio(o.parallel, hdr.parallel), o.allocs-hdr.allocs)
		}
		fmt.Fprintf(&b, "| Echo (health Check) | %s | %s | %s | %d | %s |\n", sys, dur(c.serial), dur(c.parallel), c.allocs, cmp)
	}
	return b.String()
}
