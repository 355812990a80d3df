package clientmanager

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChildServer())
	}
	goleak.VerifyTestMain(m, etcdtest.LeakOptions()...)
}
