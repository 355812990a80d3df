package balancer

import (
	"fmt"
	"testing"
	"time"
)

func benchCandidates(n int) []int64 {
	c := make([]int64, n)
	for i := range c {
		c[i] = int64(i + 1)
	}
	return c
}

// benchBalancers returns each policy with every candidate known, measured
// and trusted, so the benchmarks take the full scoring path. They are not
// seeded: they draw from the per-thread generator, as by default.
func benchBalancers(b *testing.B, candidates []int64) map[string]Balancer {
	cfg := DefaultLookAsideConfig()
	cfg.Blackout = 0
	cfg.CostExpiry = time.Hour
	l, err := NewLookAside(cfg)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]Balancer{
		"RoundRobin": NewRoundRobin(),
		"PowerOfTwo": NewPowerOfTwo(),
		"LookAside":  l,
	}
	for _, bal := range out {
		for _, id := range candidates {
			bal.Start(id).Done(time.Duration(id)*time.Microsecond, nil)
		}
	}
	return out
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{3, 100} {
		candidates := benchCandidates(n)
		for _, name := range []string{"RoundRobin", "PowerOfTwo", "LookAside"} {
			bal := benchBalancers(b, candidates)[name]
			tried := candidates[0]
			exclude := func(id int64) bool { return id == tried }
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, ok := bal.Pick(candidates, nil); !ok {
						b.Fatal("no pick")
					}
				}
			})
			b.Run(fmt.Sprintf("%s/n=%d/exclude", name, n), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, ok := bal.Pick(candidates, exclude); !ok {
						b.Fatal("no pick")
					}
				}
			})
			b.Run(fmt.Sprintf("%s/n=%d/parallel", name, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, ok := bal.Pick(candidates, nil); !ok {
							b.Error("no pick")
							return
						}
					}
				})
			})
		}
	}
}

func BenchmarkStartDone(b *testing.B) {
	candidates := benchCandidates(3)
	for _, name := range []string{"RoundRobin", "PowerOfTwo", "LookAside"} {
		bal := benchBalancers(b, candidates)[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				bal.Start(2).Done(time.Millisecond, nil)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bal.Start(2).Done(time.Millisecond, nil)
				}
			})
		})
	}
}
