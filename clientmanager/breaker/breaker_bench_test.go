package breaker

import (
	"testing"
)

func BenchmarkAllowRecordClosed(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		br, err := New(DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			tok, err := br.Allow()
			if err == nil {
				br.Record(tok, Success)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		br, err := New(DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tok, err := br.Allow()
				if err == nil {
					br.Record(tok, Success)
				}
			}
		})
	})
}

func BenchmarkAllowOpen(b *testing.B) {
	br, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	for range DefaultConfig().ConsecutiveFailures {
		tok, _ := br.Allow()
		br.Record(tok, Failure)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Allow(); err == nil {
				b.Error("open breaker admitted a call")
			}
		}
	})
}

func BenchmarkStateClosed(b *testing.B) {
	br, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if br.State() != StateClosed {
				b.Error("not closed")
			}
		}
	})
}
