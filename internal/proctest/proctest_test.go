package proctest

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testTimeout = 20 * time.Second

func shell(t *testing.T) string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	return sh
}

func TestProcFreezeThawStop(t *testing.T) {
	p := Start(t, shell(t), "ticker", "-c", `echo ready; trap 'echo bye; exit 3' TERM; while :; do echo tick; sleep 0.02; done`)
	l := p.Expect("ready", testTimeout)
	require.False(t, l.At.IsZero())
	p.Expect("tick", testTimeout)

	p.Freeze()
	// Lines already in the pipe may still be read; then nothing comes.
	var frozenAt int
	require.Eventually(t, func() bool {
		n := len(p.Lines())
		stable := n == frozenAt
		frozenAt = n
		return stable
	}, testTimeout, 200*time.Millisecond, "a frozen process prints nothing")
	p.Thaw()
	require.Eventually(t, func() bool { return len(p.Lines()) > frozenAt }, testTimeout, 10*time.Millisecond,
		"a thawed process runs again")

	p.Freeze()
	p.Stop() // thaws, so that the trap runs
	err := p.WaitExit(testTimeout)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 3, ee.ExitCode())
	_, ok := p.Await("bye", testTimeout)
	require.True(t, ok, "the TERM trap ran")
}

func TestProcKill(t *testing.T) {
	p := Start(t, shell(t), "sleeper", "-c", `echo ready; exec sleep 60`)
	p.Expect("ready", testTimeout)
	p.Kill()
	err := p.WaitExit(testTimeout)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())
	_, ok := p.Await("never", time.Second)
	require.False(t, ok, "Await returns once the process exited")
}

func TestFreePortsAreDistinct(t *testing.T) {
	ports := FreePorts(t, 20)
	seen := make(map[int]bool)
	for _, p := range ports {
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
		require.GreaterOrEqual(t, p, portBase)
		require.Less(t, p, portBase+portSpan)
	}
}
