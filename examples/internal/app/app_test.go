package app

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/startup"
)

const testTimeout = 20 * time.Second

func TestDependencies(t *testing.T) {
	req := func(role string) startup.Dependency { return startup.Dependency{Role: role} }
	opt := func(role string) startup.Dependency { return startup.Dependency{Role: role, Optional: true} }
	for _, tc := range []struct {
		name string
		d    Defaults
		args []string
		want []startup.Dependency
	}{
		{"coordinator", CoordinatorDefaults, nil, []startup.Dependency{opt("querynode")}},
		{"coordinator depends on its nodes", CoordinatorDefaults, []string{"-depends", "querynode"},
			[]startup.Dependency{opt("querynode")}},
		{"coordinator waits when asked", CoordinatorDefaults, []string{"-depends", "datacoord", "-wait-depends"},
			[]startup.Dependency{req("datacoord"), opt("querynode")}},
		{"node", NodeDefaults, []string{"-depends", "rootcoord, datacoord"},
			[]startup.Dependency{req("rootcoord"), req("datacoord")}},
		{"node without wait", NodeDefaults, []string{"-depends", "rootcoord", "-wait-depends=false"},
			[]startup.Dependency{opt("rootcoord")}},
		{"node calling", NodeDefaults, []string{"-depends", "rootcoord", "-call", "datanode"},
			[]startup.Dependency{req("rootcoord"), opt("datanode")}},
		{"called and required", NodeDefaults, []string{"-depends", "rootcoord", "-call", "rootcoord"},
			[]startup.Dependency{req("rootcoord")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parse("test", tc.args, tc.d, io.Discard)
			require.NoError(t, err)
			require.Equal(t, tc.want, f.dependencies())
		})
	}
	_, err := parse("test", []string{"-call", "querynode", "-call-interval", "0s"}, NodeDefaults, io.Discard)
	require.ErrorContains(t, err, "-call-interval (0s)")
}

// output keeps what a process prints.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// lines returns the lines printed so far.
func (o *output) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Split(o.buf.String(), "\n")
}

// has reports whether a line starting with prefix was printed.
func (o *output) has(prefix string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range strings.Split(o.buf.String(), "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// process is one example binary run in-process.
type process struct {
	out    *output
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	errc   chan error
}

func startProcess(t *testing.T, name string, d Defaults, args ...string) *process {
	t.Helper()
	f, err := parse(name, args, d, io.Discard)
	require.NoError(t, err)
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core())).
		With(zap.String("process", name))
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{out: &output{}, logs: logs, cancel: cancel, errc: make(chan error, 1)}
	go func() { p.errc <- run(ctx, context.Background(), f, d, log, p.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.errc:
		case <-time.After(testTimeout):
			t.Errorf("%s did not stop", name)
		}
	})
	return p
}

// stop stops the process gracefully and returns run's result.
func (p *process) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.errc:
		p.errc <- err // for the cleanup
		return err
	case <-time.After(testTimeout):
		t.Fatal("the process did not stop")
		return nil
	}
}

// TestCoordinatorAndNodeStartTogether starts `coordinator -depends
// querynode` and `node -depends rootcoord` at once. They used to wait for
// each other for the whole DependencyTimeout (90 s); the coordinator now
// does not wait for its nodes, so both are Healthy within seconds, and the
// coordinator calls the node.
func TestCoordinatorAndNodeStartTogether(t *testing.T) {
	m := etcdtest.Start(t)
	common := []string{"-etcd", m.Endpoint(), "-root-path", "apptest/meta", "-ttl", "2s"}
	node := startProcess(t, "node", NodeDefaults, append(common, "-depends", "rootcoord")...)
	coord := startProcess(t, "coordinator", CoordinatorDefaults,
		append(common, "-depends", "querynode", "-call-interval", "100ms")...)

	start := time.Now()
	require.Eventually(t, func() bool { return node.out.has("state Healthy ") && coord.out.has("state Healthy ") },
		testTimeout, 10*time.Millisecond, "both Healthy")
	t.Logf("coordinator and node Healthy %s after they started", time.Since(start))

	answered := func() []observer.LoggedEntry { return coord.logs.FilterMessage("call answered").All() }
	require.Eventually(t, func() bool { return len(answered()) > 0 }, testTimeout, 10*time.Millisecond,
		"the coordinator calls the node")
	e := answered()[0]
	require.Equal(t, "querynode", e.ContextMap()["callee"])
	require.Positive(t, e.ContextMap()["node_id"])
	require.NotEmpty(t, e.ContextMap()["address"])

	require.NoError(t, coord.stop(t))
	require.NoError(t, node.stop(t))
	require.True(t, node.out.has("state Stopped "))
}
