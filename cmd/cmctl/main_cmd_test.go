package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
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
		{"help of a command", []string{"help", "watch"}, 0, "", "Usage: cmctl watch -etcd", true},
		{"unknown command", []string{"frob"}, 1, "", `cmctl: unknown command "frob"`, true},
		{"bad flag", []string{"demo", "-frob"}, 1, "", "flag provided but not defined: -frob", true},
		{"positional argument", []string{"sessions", "-etcd", "127.0.0.1:1", "extra"}, 1, "", `unexpected argument "extra"`, true},
		{"missing etcd", []string{"sessions"}, 1, "", "cmctl sessions: -etcd is required", true},
		{"missing role", []string{"watch", "-etcd", "127.0.0.1:1"}, 1, "", "cmctl watch: -role is required", true},
		{"bad wait", []string{"status", "-etcd", "127.0.0.1:1", "-role", "x", "-wait", "0s"}, 1, "", "cmctl status: -wait (0s) must be > 0", true},
		{"bad root", []string{"sessions", "-etcd", "127.0.0.1:1", "-root", ""}, 1, "", `cmctl sessions: -root ""`, true},
		{"bad demo flag value", []string{"demo", "-nodes", "0"}, 1, "", "cmctl demo: -nodes (0) must be ≥ 1", true},
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
		})
	}
}
