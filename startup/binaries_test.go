package startup

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The example binaries are built once per test binary run, into a
// directory removed by TestMain.
var binaries struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// buildBinaries builds examples/coordinator and examples/node and returns
// the directory that holds them.
func buildBinaries(t testing.TB) string {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "startup-examples-")
		if binaries.err != nil {
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil && os.Getenv("GOROOT") != "" {
			goBin, err = filepath.Join(os.Getenv("GOROOT"), "bin", "go"), nil
		}
		if err != nil {
			binaries.err = err
			return
		}
		args := []string{"build", "-o", binaries.dir + string(filepath.Separator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goBin, append(args, "./examples/coordinator", "./examples/node")...)
		cmd.Dir = ".."
		binaries.out, binaries.err = cmd.CombinedOutput()
	})
	require.NoError(t, binaries.err, "building the example binaries: %s", binaries.out)
	return binaries.dir
}

func removeBinaries() {
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
}

// line is one line a process printed, with the time it was read.
type line struct {
	text string
	at   time.Time
}

// proc is an example binary running as a child process.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	addr   string
	exited chan struct{} // closed once the process exited and its output was read
	err    error         // Wait's result, set before exited closes

	mu     sync.Mutex
	lines  []line
	next   int           // index of the first line expect has not consumed
	notify chan struct{} // capacity 1: a line was added
	stderr bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) { // stderr
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func startProc(t testing.TB, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, exited: make(chan struct{}), notify: make(chan struct{}, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = p
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, line{text: sc.Text(), at: time.Now()})
			p.mu.Unlock()
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
		p.err = p.cmd.Wait() // after every read of the pipe
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s stderr:\n%s", p.name, p.stderr.String())
			p.mu.Unlock()
		}
	})
	l := p.expect("listening ", testTimeout)
	p.addr = strings.TrimPrefix(l.text, "listening ")
	return p
}

// expect consumes lines until one starting with prefix and returns it.
func (p *proc) expect(prefix string, d time.Duration) line {
	p.t.Helper()
	l, ok := p.await(prefix, time.After(d))
	if !ok {
		p.t.Fatalf("%s: no line %q within %s", p.name, prefix, d)
	}
	return l
}

// expectState waits for the line of a transition to s.
func (p *proc) expectState(s State, d time.Duration) line {
	p.t.Helper()
	return p.expect("state "+s.String()+" ", d)
}

// await is expect without failing: ok is false when timeout fired or the
// process exited first.
func (p *proc) await(prefix string, timeout <-chan time.Time) (line, bool) {
	for {
		p.mu.Lock()
		for p.next < len(p.lines) {
			l := p.lines[p.next]
			p.next++
			if strings.HasPrefix(l.text, prefix) {
				p.mu.Unlock()
				return l, true
			}
		}
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-p.exited:
			p.mu.Lock()
			more := p.next < len(p.lines)
			p.mu.Unlock()
			if !more {
				return line{}, false
			}
		case <-timeout:
			return line{}, false
		}
	}
}

func (p *proc) signal(sig syscall.Signal) time.Time {
	p.t.Helper()
	at := time.Now()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
	return at
}

// waitExit waits for the process to exit and returns Wait's error.
func (p *proc) waitExit(d time.Duration) error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		p.t.Fatalf("%s did not exit within %s", p.name, d)
		return nil
	}
}

// find returns the first line not yet consumed that starts with prefix,
// without consuming anything.
func (p *proc) find(prefix string) (line, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines[p.next:] {
		if strings.HasPrefix(l.text, prefix) {
			return l, true
		}
	}
	return line{}, false
}
