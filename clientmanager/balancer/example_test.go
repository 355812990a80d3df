package balancer_test

import (
	"fmt"
	"time"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
)

func Example() {
	b, err := balancer.New(balancer.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	online := []int64{11, 12, 13} // ascending ServerIDs
	tried := map[int64]bool{}
	for attempt := 0; attempt < 2; attempt++ {
		id, ok := b.Pick(online, func(id int64) bool { return tried[id] })
		if !ok {
			fmt.Println("no replica left")
			return
		}
		tried[id] = true
		call := b.Start(id)
		// ... call node id ...
		call.Done(3*time.Millisecond, nil)
	}
	fmt.Println("replicas tried:", len(tried))
	// Output: replicas tried: 2
}

func ExampleNewRoundRobin() {
	r := balancer.NewRoundRobin()
	skip := func(id int64) bool { return id == 2 }
	for i := 0; i < 4; i++ {
		id, _ := r.Pick([]int64{1, 2, 3}, skip)
		fmt.Print(id, " ")
	}
	fmt.Println()
	// Output: 1 3 1 3
}

func ExampleLookAside() {
	cfg := balancer.DefaultLookAsideConfig()
	cfg.Blackout = 0 // trust new nodes at once, for the example
	l, err := balancer.NewLookAside(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Node 1 answers in 80 ms, node 2 in 10 ms: node 1 is avoided.
	l.Start(1).Done(80*time.Millisecond, nil)
	l.Start(2).Done(10*time.Millisecond, nil)
	id, _ := l.Pick([]int64{1, 2}, nil)
	fmt.Println("picked", id)
	// Output: picked 2
}
