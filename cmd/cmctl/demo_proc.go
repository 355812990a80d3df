package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coordkit/clientmanager/examples"
)

// childEnv names the environment variable that makes this binary run an
// example component instead of cmctl: its value is the kind, "node" or
// "coordinator". The demo starts its components this way, so that it
// needs no build step and no source tree at run time.
const childEnv = "CMCTL_DEMO_CHILD"

// Child kinds.
const (
	kindNode        = "node"
	kindCoordinator = "coordinator"
)

const (
	// procStartTimeout bounds the wait for a child's "listening" line.
	procStartTimeout = 15 * time.Second
	// procStopTimeout bounds a child's graceful stop before it is killed.
	procStopTimeout = 10 * time.Second
	// stderrTail is how much of a child's stderr is kept for error
	// messages.
	stderrTail = 16 << 10
)

// runChild runs the example component named by childEnv, if it is set,
// and reports whether it did; code is its exit code.
func runChild(args []string) (code int, ok bool) {
	switch os.Getenv(childEnv) {
	case kindNode:
		return examples.Node(args, os.Stdout, os.Stderr), true
	case kindCoordinator:
		return examples.Coordinator(args, os.Stdout, os.Stderr), true
	}
	return 0, false
}

// proc is one child process: an example component run from this binary.
// It reads the child's stdout ("listening <addr>", "http <addr>", "state
// <to> from <from>") and keeps the end of its stderr.
type proc struct {
	name string
	kind string
	cmd  *exec.Cmd

	mu       sync.Mutex
	addr     string // gRPC address, from "listening"
	httpAddr string // debug HTTP address, from "http"
	states   []stateLine
	changed  chan struct{} // closed and replaced on every line
	frozen   bool
	stopped  bool // sent SIGTERM or SIGKILL: its exit is expected
	tail     tailBuffer

	exited  chan struct{} // closed when the process has exited
	exitErr error         // Wait's result, set before exited is closed
}

// stateLine is one "state <to> from <from>" line and when it was read.
type stateLine struct {
	to, from string
	at       time.Time
}

// startProc starts a child of kind with args and waits for its listening
// address. logs, when not nil, receives the child's stderr, each line
// prefixed with its name.
func startProc(ctx context.Context, exe, name, kind string, args []string, logs io.Writer) (*proc, error) {
	p := &proc{name: name, kind: kind, changed: make(chan struct{}), exited: make(chan struct{})}
	p.tail.max = stderrTail
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"="+kind)
	cmd.Stdout = &lineWriter{line: p.stdoutLine}
	var stderr io.Writer = &p.tail
	if logs != nil {
		stderr = io.MultiWriter(&p.tail, &lineWriter{line: func(l string) { fmt.Fprintf(logs, "%-12s %s\n", name, l) }})
	}
	cmd.Stderr = stderr
	// Its own process group: a Ctrl-C in the terminal reaches the demo,
	// which stops the children in order. Killed if the demo dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	p.cmd = cmd
	go func() {
		// Owned by the process: it ends when the child exits, which stop
		// and kill make sure of.
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(p.exited)
		p.notify()
	}()
	wctx, cancel := context.WithTimeout(ctx, procStartTimeout)
	defer cancel()
	if err := p.wait(wctx, func() bool { return p.addr != "" }); err != nil {
		p.kill()
		return nil, fmt.Errorf("%s did not start: %w%s", name, err, p.lastWords())
	}
	return p, nil
}

// stdoutLine records one line of the child's stdout.
func (p *proc) stdoutLine(l string) {
	now := time.Now()
	p.mu.Lock()
	switch f := strings.Fields(l); {
	case len(f) == 2 && f[0] == "listening":
		p.addr = f[1]
	case len(f) == 2 && f[0] == "http":
		p.httpAddr = f[1]
	case len(f) == 4 && f[0] == "state" && f[2] == "from":
		p.states = append(p.states, stateLine{to: f[1], from: f[3], at: now})
	}
	p.mu.Unlock()
	p.notify()
}

func (p *proc) notify() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.changed)
	p.changed = make(chan struct{})
}

// wait returns once cond holds (called under p.mu), or the child exited
// without it, or ctx ended.
func (p *proc) wait(ctx context.Context, cond func() bool) error {
	for {
		p.mu.Lock()
		ok, changed := cond(), p.changed
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-p.exited:
			p.mu.Lock()
			ok = cond()
			p.mu.Unlock()
			if ok {
				return nil
			}
			return fmt.Errorf("it exited (%v)", p.exitErr)
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitState returns when the child reached state after since.
func (p *proc) waitState(ctx context.Context, state string, since time.Time) (time.Time, error) {
	var at time.Time
	err := p.wait(ctx, func() bool {
		for _, s := range p.states {
			if s.to == state && !s.at.Before(since) {
				at = s.at
				return true
			}
		}
		return false
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("%s not %s: %w", p.name, state, err)
	}
	return at, nil
}

// state returns the child's last state, or "".
func (p *proc) state() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.states) == 0 {
		return ""
	}
	return p.states[len(p.states)-1].to
}

// statesSince returns the states the child entered at or after t.
func (p *proc) statesSince(t time.Time) []stateLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []stateLine
	for _, s := range p.states {
		if !s.at.Before(t) {
			out = append(out, s)
		}
	}
	return out
}

func (p *proc) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

func (p *proc) debugAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.httpAddr
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// running reports whether the child has not exited.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the child.
func (p *proc) signal(sig syscall.Signal) {
	if p.running() {
		_ = syscall.Kill(p.pid(), sig)
	}
}

// freeze stops the child with SIGSTOP; thaw resumes it with SIGCONT.
func (p *proc) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
	p.signal(syscall.SIGSTOP)
}

func (p *proc) thaw() {
	p.signal(syscall.SIGCONT)
	p.mu.Lock()
	p.frozen = false
	p.mu.Unlock()
}

// kill kills the child with SIGKILL and waits until it exited.
func (p *proc) kill() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.signal(syscall.SIGKILL)
	<-p.exited
}

// terminate asks the child to stop gracefully (SIGTERM; SIGCONT first if
// it is frozen) without waiting. Only the first call signals: a second
// SIGTERM would force the stop.
func (p *proc) terminate() {
	p.mu.Lock()
	first := !p.stopped
	p.stopped = true
	frozen := p.frozen
	p.mu.Unlock()
	if !first {
		return
	}
	if frozen {
		p.thaw()
	}
	p.signal(syscall.SIGTERM)
}

// stop stops the child gracefully and waits until it exited, killing it
// after procStopTimeout. It returns an error if the child did not exit
// cleanly.
func (p *proc) stop() error {
	p.terminate()
	select {
	case <-p.exited:
	case <-time.After(procStopTimeout):
		p.kill()
		return fmt.Errorf("%s did not stop within %s: killed%s", p.name, procStopTimeout, p.lastWords())
	}
	if err := p.exitError(); err != nil {
		return fmt.Errorf("%s: %w%s", p.name, err, p.lastWords())
	}
	return nil
}

func (p *proc) exitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// lastWords returns the end of the child's stderr, for an error message.
func (p *proc) lastWords() string {
	s := strings.TrimSpace(p.tail.String())
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	return "; its last log lines:\n    " + strings.Join(lines[max(0, len(lines)-5):], "\n    ")
}

// lineWriter calls line for each complete line written to it.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
