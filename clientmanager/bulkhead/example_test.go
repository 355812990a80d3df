package bulkhead_test

import (
	"context"
	"fmt"
	"time"

	"github.com/coordkit/clientmanager/clientmanager/bulkhead"
)

func Example() {
	b, err := bulkhead.New(bulkhead.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	permit, err := b.Acquire(context.Background())
	if err != nil {
		// ErrBulkheadFull or ErrBulkheadTimeout: try another replica.
		fmt.Println("overloaded:", bulkhead.IsOverloaded(err))
		return
	}
	defer permit.Release()
	// ... call the node ...
	fmt.Println("in flight:", b.InFlight())
	// Output: in flight: 1
}

func ExampleBulkhead_Acquire_full() {
	b, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1, MaxQueue: 0, MaxWait: time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := b.Acquire(context.Background())
	_, err = b.Acquire(context.Background())
	fmt.Println(err)
	p.Release()
	p.Release() // harmless
	fmt.Printf("%+v\n", b.Stats())
	// Output:
	// bulkhead full
	// {MaxConcurrent:1 MaxQueue:0 InFlight:0 Queued:0 Rejected:1 TimedOut:0 Canceled:0}
}

func ExampleConfig_Validate() {
	cfg := bulkhead.DefaultConfig()
	cfg.MaxConcurrent = 0
	fmt.Println(cfg.Validate())
	// Output: MaxConcurrent (0) must be between 1 and 65536: invalid bulkhead config
}
