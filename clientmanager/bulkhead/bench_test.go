package bulkhead

import (
	"context"
	"testing"
)

func BenchmarkAcquireRelease(b *testing.B) {
	bh := newTestBulkhead(b, DefaultConfig().MaxConcurrent, DefaultConfig().MaxQueue, DefaultConfig().MaxWait)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := bh.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		p.Release()
	}
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	bh := newTestBulkhead(b, DefaultConfig().MaxConcurrent, DefaultConfig().MaxQueue, DefaultConfig().MaxWait)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := bh.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			p.Release()
		}
	})
}

// BenchmarkAcquireReleaseContended has a single slot, so parallel callers
// queue: this measures the slow path (lock, hand-off, wake-up).
func BenchmarkAcquireReleaseContended(b *testing.B) {
	bh := newTestBulkhead(b, 1, 1<<16, 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := bh.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			p.Release()
		}
	})
}

func BenchmarkRejectWhenFull(b *testing.B) {
	bh := newTestBulkhead(b, 1, 0, 0)
	p, ok := bh.TryAcquire()
	if !ok {
		b.Fatal("no slot")
	}
	defer p.Release()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bh.Acquire(ctx); err != ErrBulkheadFull {
				b.Errorf("got %v", err)
				return
			}
		}
	})
}
