package startup

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(etcdtest.LeakOptions(), goleak.Cleanup(func(code int) {
		removeBinaries()
		os.Exit(code)
	}))...)
}
