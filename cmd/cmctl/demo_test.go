package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// section returns the lines of out from the line starting with from up to
// the next line starting with "==".
func section(t *testing.T, out, from string) string {
	t.Helper()
	i := strings.Index(out, "\n"+from)
	require.GreaterOrEqual(t, i, 0, "no section %q in:\n%s", from, out)
	rest := out[i+1:]
	if j := strings.Index(rest[len(from):], "\n=="); j >= 0 {
		return rest[:len(from)+j]
	}
	return rest
}

func requireLine(t *testing.T, out, pattern string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)` + pattern).FindStringSubmatch(out)
	require.NotNil(t, m, "no line matches %q in:\n%s", pattern, out)
	return m
}

func TestDemoScenario(t *testing.T) {
	cfg := defaultDemoConfig()
	cfg.TTL = time.Second
	var out syncBuffer
	start := time.Now()
	require.NoError(t, runDemo(testContext(t), &out, cfg))
	require.Less(t, time.Since(start), defaultTestTimeout)
	s := out.String()

	t.Run("every node served a call", func(t *testing.T) {
		step1 := section(t, s, "== 1.")
		require.Equal(t, cfg.Calls, strings.Count(step1, "SERVING"), step1)
		served := requireLine(t, step1, `^  calls served: (.*)$`)[1]
		for _, n := range []string{"qn-a", "qn-b", "qn-c"} {
			requireLine(t, served, `\(`+n+`\) [1-9]`)
		}
	})
	t.Run("the stopped node went offline", func(t *testing.T) {
		step2 := section(t, s, "== 2.")
		id := requireLine(t, step2, `^== 2\. qn-b \(node (\d+)\) stops gracefully`)[1]
		requireLine(t, step2, `qn-b\s+state\s+Healthy → Stopping$`)
		// The update may be coalesced into the del; either carries Stopping.
		requireLine(t, step2, `qn-b\s+session\s+(update|del)\s+querynode-`+id+` .*stopping=true`)
		requireLine(t, step2, `qn-b\s+session\s+del\s+querynode-`+id+` `)
		requireLine(t, step2, `qn-b\s+client\s+offline node `+id+` at 127\.0\.0\.1:\d+`)
		requireLine(t, step2, `qn-b\s+state\s+Stopping → Stopped$`)
		requireLine(t, step2, `^  qn-b offline for the coordinator \S+ after the stop began`)
	})
	t.Run("the new node came online and serves", func(t *testing.T) {
		step3 := section(t, s, "== 3.")
		id := requireLine(t, step3, `qn-d\s+client\s+online\s+node (\d+) at 127\.0\.0\.1:\d+`)[1]
		requireLine(t, step3, `^  qn-d \(node `+id+`\) online for the coordinator`)
		requireLine(t, step3, `qn-d\s+session\s+add\s+querynode-`+id+` `)
		requireLine(t, step3, `^  calls served: .*node `+id+` \(qn-d\) [1-9]`)
		require.NotContains(t, step3, "(qn-b)", "the stopped node got a call")
	})
	t.Run("status lists the online nodes", func(t *testing.T) {
		step4 := section(t, s, "== 4.")
		requireLine(t, step4, `^  NODE\s+ROLE\s+ADDRESS\s+STATE\s+FOR\s+BREAKER\s+IN-FLIGHT`)
		require.Equal(t, 3, len(regexp.MustCompile(`(?m)^  \d+\s+querynode\s+127\.0\.0\.1:\d+\s+online\s+\S+\s+closed\s+0\s`).FindAllString(step4, -1)), step4)
	})
	t.Run("shutdown stopped every component", func(t *testing.T) {
		down := section(t, s, "== shutdown")
		for _, n := range []string{"qn-a", "qn-c", "qn-d", "rootcoord"} {
			requireLine(t, down, n+`\s+state\s+Stopping → Stopped$`)
		}
		requireLine(t, down, `^  client manager closed$`)
		requireLine(t, down, `^  etcd closed$`)
	})
}

func TestDemoLoopInterrupted(t *testing.T) {
	cfg := defaultDemoConfig()
	cfg.Nodes, cfg.Calls, cfg.TTL = 2, 2, time.Second
	cfg.Duration, cfg.CallInterval = time.Hour, 10*time.Millisecond
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, &out, cfg) }()
	eventually(t, &out, "== a call every 10ms for 1h0m0s", "  call  3  → node ")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "an interruption is a clean stop")
	case <-time.After(defaultTestTimeout):
		t.Fatal("runDemo did not return after its context ended")
	}
	s := out.String()
	requireLine(t, s, `^  interrupted after \d+ calls$`)
	for _, n := range []string{"qn-a", "qn-b", "qn-c", "rootcoord"} {
		requireLine(t, s, n+`\s+state\s+Stopping → Stopped$`)
	}
	requireLine(t, s, `^  etcd closed$`)
}

func TestDemoLoopDuration(t *testing.T) {
	cfg := defaultDemoConfig()
	cfg.Nodes, cfg.Calls, cfg.TTL = 1, 1, time.Second
	cfg.Duration, cfg.CallInterval = 200*time.Millisecond, 50*time.Millisecond
	var out syncBuffer
	require.NoError(t, runDemo(testContext(t), &out, cfg))
	loop := section(t, out.String(), "== a call every")
	n := strings.Count(loop, "SERVING")
	require.GreaterOrEqual(t, n, 2, loop)
	require.LessOrEqual(t, n, 5, loop)
	requireLine(t, loop, `^  calls served: node \d+ \(qn-[ab]\) [1-9]`)
}

func TestDemoConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*demoConfig)
		field  string
	}{
		{"no nodes", func(c *demoConfig) { c.Nodes = 0 }, "-nodes (0)"},
		{"negative duration", func(c *demoConfig) { c.Duration = -time.Second }, "-duration (-1s)"},
		{"fractional ttl", func(c *demoConfig) { c.TTL = 1500 * time.Millisecond }, "-ttl (1.5s)"},
		{"short ttl", func(c *demoConfig) { c.TTL = 0 }, "-ttl (0s)"},
		{"no calls", func(c *demoConfig) { c.Calls = 0 }, "calls (0)"},
		{"no interval", func(c *demoConfig) { c.CallInterval = 0 }, "call interval (0s)"},
		{"no step timeout", func(c *demoConfig) { c.StepTimeout = 0 }, "step timeout (0s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultDemoConfig()
			tc.change(&cfg)
			err := runDemo(context.Background(), &syncBuffer{}, cfg)
			require.ErrorContains(t, err, tc.field)
		})
	}
	require.NoError(t, defaultDemoConfig().validate())
}

func TestNodeLetter(t *testing.T) {
	for i, want := range map[int]string{0: "a", 1: "b", 25: "z", 26: "aa", 27: "ab", 51: "az", 52: "ba", 701: "zz", 702: "aaa"} {
		require.Equal(t, want, nodeLetter(i), "nodeLetter(%d)", i)
	}
}

func TestDemoInterruptedDuringStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out syncBuffer
	require.NoError(t, runDemo(ctx, &out, defaultDemoConfig()), "an interruption is a clean stop")
	s := out.String()
	requireLine(t, s, `^== interrupted: .*context canceled$`)
	requireLine(t, s, `^== shutdown`)
	requireLine(t, s, `^  etcd closed$`)
}

func TestDemoFailsClearly(t *testing.T) {
	cfg := defaultDemoConfig()
	cfg.StepTimeout = time.Nanosecond // nothing can be healthy that fast
	var out syncBuffer
	err := runDemo(testContext(t), &out, cfg)
	require.ErrorContains(t, err, "rootcoord not healthy")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	requireLine(t, out.String(), `^  etcd closed$`)
}
