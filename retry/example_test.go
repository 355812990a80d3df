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
