package startup

import (
	"strings"
	"testing"
	"time"

	"github.com/coordkit/clientmanager/internal/proctest"
)

// The example binaries are built once per test binary run, into a
// directory removed by TestMain.
var binaries proctest.Builds

// buildBinaries builds examples/coordinator and examples/node and returns
// the directory that holds them.
func buildBinaries(t testing.TB) string {
	t.Helper()
	return binaries.Build(t, "./examples/coordinator", "./examples/node")
}

func removeBinaries() { binaries.Remove() }

// proc is an example binary running as a child process, serving at addr.
type proc struct {
	*proctest.Proc
	addr string
}

// startProc starts bin and waits for the line saying where it serves.
func startProc(t testing.TB, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{Proc: proctest.Start(t, bin, name, args...)}
	l := p.Expect("listening ", testTimeout)
	p.addr = strings.TrimPrefix(l.Text, "listening ")
	return p
}

// expectState waits for the line of a transition to s.
func (p *proc) expectState(s State, d time.Duration) proctest.Line {
	return p.Expect("state "+s.String()+" ", d)
}
