package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

func TestSessions(t *testing.T) {
	m := etcdtest.Start(t)
	qn := register(t, m, session.Session{ServerName: "querynode", Address: "127.0.0.1:21123", Version: "2.4.1"}).Session()
	rc := register(t, m, session.Session{ServerName: "rootcoord", Address: "127.0.0.1:21124", Version: "2.4.0", Exclusive: true}).Session()
	// A value that is not a record is skipped with a warning.
	_, err := m.Client.Put(testContext(t), session.DefaultConfig().Key("datanode", 99), "not json")
	require.NoError(t, err)

	qnRow := `(?m)^querynode\s+` + strconv.FormatInt(qn.ServerID, 10) + `\s+127\.0\.0\.1:21123\s+2\.4\.1\s+` +
		strconv.FormatInt(qn.LeaseID, 16) + `\s+false\s+false$`
	rcRow := `(?m)^rootcoord\s+` + strconv.FormatInt(rc.ServerID, 10) + `\s+127\.0\.0\.1:21124\s+2\.4\.0\s+` +
		strconv.FormatInt(rc.LeaseID, 16) + `\s+false\s+true$`
	header := `(?m)^ROLE\s+SERVER ID\s+ADDRESS\s+VERSION\s+LEASE\s+STOPPING\s+EXCLUSIVE$`

	for _, tc := range []struct {
		name       string
		args       []string
		want       []string // patterns every one of which matches
		rows       int      // rows under the header
		wantStderr string
	}{
		{"one role", []string{"-role", "querynode"}, []string{header, qnRow}, 1, ""},
		{"exclusive role listed once", []string{"-role", "rootcoord"}, []string{header, rcRow}, 1, ""},
		{"every role", nil, []string{header, qnRow, rcRow}, 2, "skipping by-dev/meta/session/datanode-99"},
		{"other root", []string{"-root", "other/meta"}, []string{`(?m)^no sessions under other/meta/session/$`}, 0, ""},
		{"no such role", []string{"-role", "indexnode"}, []string{`(?m)^no sessions under by-dev/meta/session/indexnode$`}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut syncBuffer
			err := cmdSessions(testContext(t), append([]string{"-etcd", m.Endpoint()}, tc.args...), &out, &errOut)
			require.NoError(t, err)
			s := out.String()
			for _, p := range tc.want {
				require.Regexp(t, regexp.MustCompile(p), s)
			}
			lines := strings.Split(strings.TrimSpace(s), "\n")
			if tc.rows > 0 {
				require.Len(t, lines, tc.rows+1, s)
			}
			if tc.wantStderr == "" {
				require.Empty(t, errOut.String())
			} else {
				require.Contains(t, errOut.String(), tc.wantStderr)
			}
		})
	}
}

func TestRoleOfKey(t *testing.T) {
	for key, want := range map[string]string{
		"querynode-7":    "querynode",
		"rootcoord":      "rootcoord",
		"query-node-12":  "query-node",
		"data-node":      "data-node",
		"-5":             "-5",
		"querynode-":     "querynode-",
		"querynode-0x10": "querynode-0x10",
	} {
		require.Equal(t, want, roleOfKey(key), key)
	}
}
