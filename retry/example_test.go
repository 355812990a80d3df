package retry_test

import (
	"context"
	"fmt"

	"github.com/cockroachdb/errors"
	"github.com/coordkit/clientmanager/retry"
)

func ExampleDo() {
	attempt := 0
	err := retry.Do(context.Background(), retry.DefaultPolicy(), func(context.Context) error {
		attempt++
		if attempt < 2 {
			return errors.New("not yet")
		}
		return nil
	})
	fmt.Println(err, attempt)
	// Output: <nil> 2
}

func ExampleBackoff_Delay() {
	b := retry.DefaultBackoff()
	b.Jitter = 0 // wait the bound itself, so the output is fixed
	for n := 1; n <= 5; n++ {
		fmt.Println(n, b.Delay(n, 0.5))
	}
	b.Jitter = 1 // full jitter: r = 0.5 waits half the bound
	fmt.Println(b.Delay(2, 0.5))
	// Output:
	// 1 100ms
	// 2 160ms
	// 3 256ms
	// 4 409.6ms
	// 5 655.36ms
	// 80ms
}
