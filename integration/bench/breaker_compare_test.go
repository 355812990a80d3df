package bench

import (
	"testing"
	"time"

	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

// Every breaker is configured alike where the library allows it: open on
// 5 consecutive failures (gobreaker) or a 50 % failure rate over at least
// 20 calls in 10 s (ours also on 5 consecutive failures, failsafe-go on
// the rate), 5 s break, 3 half-open probes. Only successes are recorded,
// so every breaker stays closed: this measures the cost a healthy call
// pays.

// closedOp is one admitted call with a successful result.
type closedOp func() bool

func ours(b *testing.B) closedOp {
	br, err := breaker.New(breaker.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	return func() bool {
		tok, err := br.Allow()
		if err != nil {
			return false
		}
		br.Record(tok, breaker.Success)
		return true
	}
}

func gobreakerSettings() gobreaker.Settings {
	return gobreaker.Settings{
		Name:         "node",
		MaxRequests:  3,
		Interval:     10 * time.Second,
		BucketPeriod: time.Second,
		Timeout:      5 * time.Second,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
	}
}

func gobreakerExecute(*testing.B) closedOp {
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreakerSettings())
	fn := func() (struct{}, error) { return struct{}{}, nil }
	return func() bool {
		_, err := cb.Execute(fn)
		return err == nil
	}
}

func gobreakerTwoStep(*testing.B) closedOp {
	cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreakerSettings())
	return func() bool {
		done, err := cb.Allow()
		if err != nil {
			return false
		}
		done(nil)
		return true
	}
}

func failsafeBreaker() circuitbreaker.CircuitBreaker[any] {
	return circuitbreaker.NewBuilder[any]().
		WithFailureRateThreshold(0.5, 20, 10*time.Second).
		WithDelay(5 * time.Second).
		WithSuccessThreshold(3).
		Build()
}

func failsafePermit(*testing.B) closedOp {
	cb := failsafeBreaker()
	return func() bool {
		if !cb.TryAcquirePermit() {
			return false
		}
		cb.RecordSuccess()
		return true
	}
}

func failsafeRun(*testing.B) closedOp {
	ex := failsafe.With[any](failsafeBreaker())
	fn := func() error { return nil }
	return func() bool { return ex.Run(fn) == nil }
}

func BenchmarkBreakerClosed(b *testing.B) {
	for _, impl := range []struct {
		name string
		make func(*testing.B) closedOp
	}{
		{"ours", ours},
		{"gobreaker-execute", gobreakerExecute},
		{"gobreaker-twostep", gobreakerTwoStep},
		{"failsafe-permit", failsafePermit},
		{"failsafe-run", failsafeRun},
	} {
		b.Run("impl="+impl.name+"/mode=serial", func(b *testing.B) {
			op := impl.make(b)
			b.ReportAllocs()
			for b.Loop() {
				if !op() {
					b.Fatal("a closed breaker refused a call")
				}
			}
		})
		b.Run("impl="+impl.name+"/mode=parallel", func(b *testing.B) {
			op := impl.make(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !op() {
						b.Error("a closed breaker refused a call")
						return
					}
				}
			})
		})
	}
}
