package bench

import (
	"testing"
	"time"
)

// The bootstrap interval of a ratio holds the ratio of the samples'
// quantiles, and tells a real difference from none.
func TestRatioCI(t *testing.T) {
	base := make([]time.Duration, 200)
	for i := range base {
		base[i] = time.Duration(1000+i*i) * time.Microsecond // a long tail
	}
	double := make([]time.Duration, len(base))
	for i, d := range base {
		double[i] = 2 * d
	}
	for _, p := range []int{50, 99} {
		lo, hi := ratioCI(base, base, p)
		if lo > 1 || hi < 1 {
			t.Errorf("p%d: the same samples: interval [%.2f, %.2f] leaves out 1", p, lo, hi)
		}
		lo, hi = ratioCI(double, base, p)
		if lo <= 1 || lo > 2 || hi < 2 {
			t.Errorf("p%d: samples twice as long: interval [%.2f, %.2f] should hold 2 and not 1", p, lo, hi)
		}
	}
	if lo, hi := ratioCI(nil, base, 50); lo != 0 || hi != 0 {
		t.Errorf("no samples: [%.2f, %.2f], want none", lo, hi)
	}
	// Mostly zero, as a crash's times are on most repetitions: the
	// median is 0 in nearly every resample, and there is no interval.
	zeros := make([]time.Duration, 200)
	zeros[0], zeros[1] = time.Millisecond, 2*time.Millisecond
	for _, p := range []int{50, 99} {
		if lo, hi := ratioCI(base, zeros, p); lo != 0 || hi != 0 {
			t.Errorf("p%d over a median of 0: [%.2f, %.2f], want none", p, lo, hi)
		}
	}
	if lo, hi := ratioCI(zeros, zeros, 99); lo != 0 || hi != 0 {
		t.Errorf("p99 of two, 0 in most resamples: [%.2f, %.2f], want none", lo, hi)
	}
}
