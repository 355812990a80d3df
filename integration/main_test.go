package integration

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/internal/proctest"
)

// builds holds the example binaries of the process scenarios (build tag
// integration), built once per test binary and removed by TestMain.
var builds proctest.Builds

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(etcdtest.LeakOptions(), goleak.Cleanup(func(code int) {
		builds.Remove()
		os.Exit(code)
	}))...)
}
