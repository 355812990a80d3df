package clientmanager

import (
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// A cached child is the vector's own: what it counts is what the vector
// exports, it is resolved once per label set, and concurrent first uses
// of many label sets all land.
func TestCachedChildrenAreTheVectorsOwn(t *testing.T) {
	m, err := newMetrics(nil)
	require.NoError(t, err)
	c := m.attempts.WithLabelValues(testRole)
	require.Same(t, c, m.attempts.WithLabelValues(testRole), "resolved once")
	c.Add(2)
	require.Equal(t, 2.0, testutil.ToFloat64(m.attempts.vec.WithLabelValues(testRole)))

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for r := range 50 {
				m.call("role"+strconv.Itoa(r), codes.Code(g%3))
			}
		})
	}
	wg.Wait()
	require.Equal(t, 150, testutil.CollectAndCount(m.calls.vec), "50 roles × 3 codes")
	require.Len(t, *m.calls.m.Load(), 150)
	var total float64
	for r := range 50 {
		for code := range 3 {
			total += testutil.ToFloat64(m.calls.vec.WithLabelValues("role"+strconv.Itoa(r), codes.Code(code).String()))
		}
	}
	require.Equal(t, 8*50.0, total, "no increment lost")
}

// BenchmarkRoleCounter compares a vector's WithLabelValues with the cached
// child on the call path's pattern: one increment per call.
func BenchmarkRoleCounter(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	require.NoError(b, err)
	for _, bc := range []struct {
		name string
		inc  func()
	}{
		{"vector", func() { m.calls.vec.WithLabelValues(testRole, codes.OK.String()).Inc() }},
		{"cached", func() { m.call(testRole, codes.OK) }},
	} {
		b.Run(bc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.inc()
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bc.inc()
				}
			})
		})
	}
}
