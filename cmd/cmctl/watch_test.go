package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

func TestWatch(t *testing.T) {
	m := etcdtest.Start(t)
	first := register(t, m, session.Session{ServerName: "querynode", Address: "127.0.0.1:21201", Version: "2.4.0"})
	register(t, m, session.Session{ServerName: "datanode", Address: "127.0.0.1:21202", Version: "2.4.0"})

	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- cmdWatch(ctx, []string{"-etcd", m.Endpoint(), "-role", "querynode"}, &out, &errOut)
	}()

	line := func(typ string, s session.Session, stopping bool) string {
		return fmt.Sprintf("  %-6s  querynode-%d  address=%s version=2.4.0 lease=%x stopping=%t exclusive=false rev=",
			typ, s.ServerID, s.Address, s.LeaseID, stopping)
	}
	eventually(t, &out, "watching by-dev/meta/session/querynode", line("add", first.Session(), false))

	second := register(t, m, session.Session{ServerName: "querynode", Address: "127.0.0.1:21203", Version: "2.4.0"})
	eventually(t, &out, line("add", second.Session(), false))

	rctx, rcancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer rcancel()
	require.NoError(t, first.MarkStopping(rctx))
	require.NoError(t, first.Close(rctx))
	eventually(t, &out, line("del", first.Session(), true))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "an interruption is the normal end")
	case <-time.After(defaultTestTimeout):
		t.Fatal("watch did not return after its context ended")
	}
	require.NotContains(t, out.String(), "datanode", "another role's session was printed")
	require.Empty(t, errOut.String())
}

// TestWatchReportsEtcdLoss: watch says on stderr when etcd stops
// answering, again every -wait while it does not, and when it is back;
// the events go on after.
func TestWatchReportsEtcdLoss(t *testing.T) {
	m := etcdtest.Start(t)
	first := register(t, m, session.Session{ServerName: "querynode", Address: "127.0.0.1:21301", Version: "2.4.0"})
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- cmdWatch(ctx, []string{"-etcd-endpoints", m.Endpoint(), "-role", "querynode", "-wait", "1s"}, &out, &errOut)
	}()
	eventually(t, &out, fmt.Sprintf("querynode-%d", first.Session().ServerID))

	m.Stop(t)
	stopped := time.Now()
	eventually(t, &errOut, "lost etcd at "+m.Endpoint()+": connection refused")
	t.Logf("lost etcd reported %s after the stop", time.Since(stopped))
	eventually(t, &errOut, "still no etcd at "+m.Endpoint()+", for ")
	m.Restart(t)
	eventually(t, &errOut, "etcd is back at "+m.Endpoint()+" after ")

	second := register(t, m, session.Session{ServerName: "querynode", Address: "127.0.0.1:21302", Version: "2.4.0"})
	eventually(t, &out, fmt.Sprintf("querynode-%d", second.Session().ServerID))
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(defaultTestTimeout):
		t.Fatal("watch did not return after its context ended")
	}
}
