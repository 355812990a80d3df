package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// console serialises the demo's output. When a write fails (stdout is a
// closed pipe: `cmctl demo | head`), it stops writing and calls broken
// once, which stops the demo as an interruption would, so that it still
// cleans up.
type console struct {
	mu     sync.Mutex
	w      io.Writer
	start  time.Time
	names  map[string]string // address → component name
	failed bool
	broken func()
	// tty: the output is a terminal, where the live table is redrawn in
	// place.
	tty bool
}

func newConsole(w io.Writer, broken func()) *console {
	return &console{w: w, start: time.Now(), names: make(map[string]string), broken: broken}
}

// printf prints one line.
func (c *console) printf(format string, args ...any) {
	_ = c.write(func(w io.Writer) error {
		_, err := fmt.Fprintf(w, format+"\n", args...)
		return err
	})
}

// at prints one line of a step, stamped with the time since t0.
func (c *console) at(t0, t time.Time, format string, args ...any) {
	c.printf("  %+8.3fs  %s", t.Sub(t0).Seconds(), fmt.Sprintf(format, args...))
}

// write lets f write several lines at once.
func (c *console) write(f func(w io.Writer) error) error {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return nil
	}
	err := f(c.w)
	if err != nil {
		c.failed = true
	}
	c.mu.Unlock()
	if err != nil && c.broken != nil {
		c.broken()
	}
	return err
}

// redraw replaces the last `lines` lines written with text (ANSI: cursor
// up, erase to the end of the screen) and returns its number of lines.
func (c *console) redraw(lines int, text string) int {
	_ = c.write(func(w io.Writer) error {
		if lines > 0 {
			if _, err := fmt.Fprintf(w, "\x1b[%dA\x1b[J", lines); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, text)
		return err
	})
	return strings.Count(text, "\n")
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// setName names the component serving at addr.
func (c *console) setName(addr, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names[addr] = name
}

// name returns the name of the component serving at addr, or addr.
func (c *console) name(addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.names[addr]; ok {
		return n
	}
	return addr
}
