package proctest

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Line is one line a process printed to stdout, with the time it was read.
type Line struct {
	Text string
	At   time.Time
}

// Proc is a binary running as a child process. Its stdout is read line
// by line; its stderr is kept and logged by t.Cleanup when the test
// failed.
type Proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process exited and its output was read
	err    error         // Wait's result, set before exited closes

	mu     sync.Mutex
	lines  []Line
	next   int           // index of the first line Expect has not consumed
	notify chan struct{} // capacity 1: a line was added
	stderr bytes.Buffer
	frozen bool
}

// stderrKept bounds the stderr a Proc keeps: the last bytes are logged.
const stderrKept = 64 << 10

// Start starts bin with args; name names it in messages. The process is
// killed (and thawed first if frozen) by t.Cleanup if it still runs.
func Start(t testing.TB, bin, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, name: name, exited: make(chan struct{}), notify: make(chan struct{}, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = (*stderrWriter)(p)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("proctest: %s: %v", name, err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("proctest: start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, Line{Text: sc.Text(), At: time.Now()})
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
			_ = p.cmd.Process.Kill() // SIGKILL ends a stopped process too
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s stderr (last %d KiB at most):\n%s", p.name, stderrKept>>10, p.Stderr())
		}
	})
	return p
}

type stderrWriter Proc

func (w *stderrWriter) Write(b []byte) (int, error) {
	p := (*Proc)(w)
	p.mu.Lock()
	defer p.mu.Unlock()
	n, _ := p.stderr.Write(b)
	if over := p.stderr.Len() - stderrKept; over > 0 {
		p.stderr.Next(over)
	}
	return n, nil
}

// Name returns the name given to Start.
func (p *Proc) Name() string { return p.name }

// PID returns the process ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Stderr returns what the process wrote to stderr (its last 64 KiB).
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Expect consumes lines until one starting with prefix and returns it; it
// fails the test when none comes within d or the process exits first.
func (p *Proc) Expect(prefix string, d time.Duration) Line {
	p.t.Helper()
	l, ok := p.Await(prefix, d)
	if !ok {
		p.t.Fatalf("proctest: %s: no line %q within %s", p.name, prefix, d)
	}
	return l
}

// Await is Expect without failing: ok is false when d passed or the
// process exited first.
func (p *Proc) Await(prefix string, d time.Duration) (Line, bool) {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		for p.next < len(p.lines) {
			l := p.lines[p.next]
			p.next++
			if strings.HasPrefix(l.Text, prefix) {
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
				return Line{}, false
			}
		case <-timeout.C:
			return Line{}, false
		}
	}
}

// Find returns the first line not yet consumed that starts with prefix,
// without consuming anything.
func (p *Proc) Find(prefix string) (Line, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines[p.next:] {
		if strings.HasPrefix(l.Text, prefix) {
			return l, true
		}
	}
	return Line{}, false
}

// Lines returns every line read so far.
func (p *Proc) Lines() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Line(nil), p.lines...)
}

// Signal sends sig and returns the time it was sent.
func (p *Proc) Signal(sig syscall.Signal) time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("proctest: %s: signal %s: %v", p.name, sig, err)
	}
	return at
}

// Stop sends SIGTERM (thawing a frozen process first, or it would not
// handle the signal) and returns the time it was sent.
func (p *Proc) Stop() time.Time {
	p.t.Helper()
	at := p.Signal(syscall.SIGTERM)
	p.Thaw()
	return at
}

// Kill sends SIGKILL and returns the time it was sent.
func (p *Proc) Kill() time.Time {
	p.t.Helper()
	return p.Signal(syscall.SIGKILL)
}

// Freeze sends SIGSTOP: the process stops running, its sockets stay open.
func (p *Proc) Freeze() time.Time {
	p.t.Helper()
	at := p.Signal(syscall.SIGSTOP)
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
	return at
}

// Thaw sends SIGCONT to a frozen process; a no-op otherwise.
func (p *Proc) Thaw() time.Time {
	p.t.Helper()
	p.mu.Lock()
	frozen := p.frozen
	p.frozen = false
	p.mu.Unlock()
	if !frozen {
		return time.Now()
	}
	return p.Signal(syscall.SIGCONT)
}

// Exited is closed once the process exited and its output was read.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// WaitExit waits for the process to exit and returns Wait's error; it
// fails the test when the process still runs after d.
func (p *Proc) WaitExit(d time.Duration) error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		p.t.Fatalf("proctest: %s did not exit within %s", p.name, d)
		return nil
	}
}
