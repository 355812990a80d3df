package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/examples"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring of stdout
		stderr   string // substring of stderr
		noStdout bool
	}{
		{"no args", nil, 0, "Usage: cmctl <command> [flags]", "", false},
		{"help", []string{"help"}, 0, "  sessions  list the sessions", "", false},
		{"help of a command", []string{"help", "watch"}, 0, "Usage: cmctl watch -etcd-endpoints", "", false},
		{"-h of a command", []string{"demo", "-h"}, 0, "  -speed float", "", false},
		{"unknown command", []string{"frob"}, 1, "", `cmctl: unknown command "frob"`, true},
		{"bad flag", []string{"demo", "-frob"}, 1, "", "flag provided but not defined: -frob", true},
		{"bad flag value", []string{"demo", "-speed", "fast"}, 1, "", `invalid value "fast" for flag -speed`, true},
		{"positional argument", []string{"sessions", "-etcd", "127.0.0.1:1", "extra"}, 1, "", `unexpected argument "extra"`, true},
		{"missing etcd", []string{"sessions"}, 1, "", "cmctl sessions: -etcd-endpoints is required", true},
		{"missing role", []string{"watch", "-etcd", "127.0.0.1:1"}, 1, "", "cmctl watch: -role is required", true},
		{"bad wait", []string{"status", "-etcd", "127.0.0.1:1", "-role", "x", "-wait", "0s"}, 1, "", "cmctl status: -wait (0s) must be > 0", true},
		{"bad root", []string{"sessions", "-etcd", "127.0.0.1:1", "-root", ""}, 1, "", `cmctl sessions: -root-path ""`, true},
		{"bad demo flag value", []string{"demo", "-nodes", "0"}, 1, "", "cmctl demo: -nodes (0) must be in [1, 20]", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut syncBuffer
			code := run(context.Background(), tc.args, &out, &errOut)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			require.Contains(t, out.String(), tc.stdout)
			require.Contains(t, errOut.String(), tc.stderr)
			if tc.noStdout {
				require.Empty(t, out.String())
			}
			if tc.code == 0 {
				require.Empty(t, errOut.String(), "help is not an error")
			}
		})
	}
}

// TestEtcdUnreachable: every command that reads etcd says, within its
// -wait, which endpoint did not answer and why, and exits with code 2.
func TestEtcdUnreachable(t *testing.T) {
	refused := closedPort(t)
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	httpSrv := httptest.NewServer(http.NotFoundHandler())
	defer httpSrv.Close()
	const wait = time.Second
	for _, tc := range []struct {
		name     string
		endpoint string
		cause    string
	}{
		{"connection refused", refused, "connection refused"},
		{"no such host", "nosuchhost.invalid:2379", "nosuchhost.invalid"},
		{"TLS", strings.TrimPrefix(tlsSrv.URL, "https://"), "the server speaks TLS"},
		{"not etcd", strings.TrimPrefix(httpSrv.URL, "http://"), "TCP connects, but no etcd answers there"},
	} {
		for _, cmd := range [][]string{{"sessions"}, {"status", "-role", "querynode"}, {"watch", "-role", "querynode"}} {
			t.Run(tc.name+"/"+cmd[0], func(t *testing.T) {
				var out, errOut syncBuffer
				start := time.Now()
				args := append(append([]string(nil), cmd...), "-etcd-endpoints", tc.endpoint, "-wait", wait.String())
				code := run(testContext(t), args, &out, &errOut)
				took := time.Since(start)
				require.Equal(t, exitUnreachable, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
				require.Contains(t, errOut.String(), "cmctl "+cmd[0]+": etcd unreachable at "+tc.endpoint+" within -wait 1s: ")
				require.Contains(t, errOut.String(), tc.cause)
				require.Less(t, took, wait+3*diagnoseTimeout, "it answers within -wait (and the diagnosis)")
				require.Empty(t, out.String())
			})
		}
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestSameFlagNames: the flags that cmctl and the example binaries share
// have the same names, long and short.
func TestSameFlagNames(t *testing.T) {
	usage := func(f func([]string, *syncBuffer, *syncBuffer)) string {
		var out, errOut syncBuffer
		f([]string{"-h"}, &out, &errOut)
		return out.String() + errOut.String()
	}
	binaries := map[string]string{
		"node":        usage(func(a []string, o, e *syncBuffer) { examples.Node(a, o, e) }),
		"coordinator": usage(func(a []string, o, e *syncBuffer) { examples.Coordinator(a, o, e) }),
	}
	for _, c := range []string{"demo", "sessions", "watch", "status"} {
		binaries["cmctl "+c] = usage(func(a []string, o, e *syncBuffer) { run(context.Background(), append([]string{c}, a...), o, e) })
	}
	for name, text := range binaries {
		for _, f := range []string{"-" + examples.FlagEtcdEndpoints + " ", "-etcd ", "-" + examples.FlagRootPath + " ", "-root "} {
			require.Contains(t, text, "  "+f, "%s has no %s flag:\n%s", name, f, text)
		}
	}
	for _, name := range []string{"node", "coordinator", "cmctl demo"} {
		for _, f := range []string{"-" + examples.FlagTTL + " ", "-" + examples.FlagHTTPAddr + " "} {
			require.Contains(t, binaries[name], "  "+f, "%s has no %s flag", name, f)
		}
	}
}
