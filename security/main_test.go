package security

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, etcdtest.LeakOptions()...) }
