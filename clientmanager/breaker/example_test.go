package breaker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/jonboulle/clockwork"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func ExampleBreaker() {
	clk := clockwork.NewFakeClock()
	b, err := breaker.New(breaker.DefaultConfig(),
		breaker.WithClock(clk),
		breaker.WithRand(func() float64 { return 0 }), // no jitter: a 5 s break
		breaker.WithOnStateChange(func(from, to breaker.State) { fmt.Println(from, "→", to) }),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	// call wraps one gRPC call to the node.
	call := func(rpc func() error) error {
		tok, err := b.Allow()
		if err != nil {
			return err // fail fast, the node is not called
		}
		err = rpc()
		b.Done(tok, err, ctx)
		return err
	}
	down := func() error { return status.Error(codes.Unavailable, "connection refused") }
	up := func() error { return nil }

	for range 5 {
		_ = call(down)
	}
	fmt.Println(call(up))

	clk.Advance(5 * time.Second) // the break is over
	for range 3 {
		_ = call(up) // three successful probes close it
	}
	fmt.Println(b.State())
	// Output:
	// closed → open
	// breaker: circuit breaker is open
	// open → half-open
	// half-open → closed
	// closed
}

func ExampleClassify() {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	fmt.Println(breaker.Classify(nil, ctx))
	fmt.Println(breaker.Classify(status.Error(codes.Unavailable, "down"), ctx))
	fmt.Println(breaker.Classify(status.Error(codes.NotFound, "no such collection"), ctx))
	fmt.Println(breaker.Classify(context.DeadlineExceeded, ctx)) // the attempt's own timeout
	fmt.Println(breaker.Classify(context.Canceled, cancelled))   // the caller gave up
	// Output:
	// success
	// failure
	// success
	// failure
	// excluded
}

func ExampleBreaker_Refresh() {
	clk := clockwork.NewFakeClock()
	b, _ := breaker.New(breaker.DefaultConfig(), breaker.WithClock(clk), breaker.WithRand(func() float64 { return 0 }))
	for range 5 {
		tok, _ := b.Allow()
		b.Record(tok, breaker.Failure)
	}
	clk.Advance(5 * time.Second)
	// The router's tick: without any call, the node becomes probeable.
	fmt.Println(b.Refresh())
	// Output: half-open
}
