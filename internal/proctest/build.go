package proctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Builds builds main packages of the module once, into a temporary
// directory that Remove deletes (call it from TestMain, for example with
// goleak.Cleanup). The zero value is ready to use.
type Builds struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// Build builds pkgs (import paths relative to the module root, such as
// "./examples/node") the first time it is called, with -race when the
// test binary has it, and returns the directory that holds the binaries,
// each named after the last element of its path. Later calls return the
// same directory and ignore pkgs.
func (b *Builds) Build(t testing.TB, pkgs ...string) string {
	t.Helper()
	b.once.Do(func() { b.dir, b.out, b.err = build(pkgs) })
	if b.err != nil {
		t.Fatalf("proctest: building %v: %v\n%s", pkgs, b.err, b.out)
	}
	return b.dir
}

// Remove deletes the binaries; a no-op when nothing was built.
func (b *Builds) Remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

func build(pkgs []string) (dir string, out []byte, err error) {
	goBin, err := goCommand()
	if err != nil {
		return "", nil, err
	}
	root, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", nil, err
	}
	dir, err = os.MkdirTemp("", "proctest-")
	if err != nil {
		return "", nil, err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if RaceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, pkgs...)...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	out, err = cmd.CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", out, err
	}
	return dir, out, nil
}

// goCommand finds the go command: on PATH, else under GOROOT (go test
// sets GOROOT in the environment of the test binary).
func goCommand() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil && os.Getenv("GOROOT") != "" {
		return filepath.Join(os.Getenv("GOROOT"), "bin", "go"), nil
	}
	return goBin, err
}
