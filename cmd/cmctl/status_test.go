package main

import (
	"net"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// serveHealth serves the gRPC health service on a loopback port until
// t.Cleanup and returns its address.
func serveHealth(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return lis.Addr().String()
}

func TestStatus(t *testing.T) {
	m := etcdtest.Start(t)
	addr := serveHealth(t)
	s := register(t, m, session.Session{ServerName: "querynode", Address: addr, Version: "2.4.0"}).Session()

	t.Run("online node", func(t *testing.T) {
		var out, errOut syncBuffer
		require.NoError(t, cmdStatus(testContext(t), []string{"-etcd", m.Endpoint(), "-role", "querynode"}, &out, &errOut))
		o := out.String()
		require.Regexp(t, `(?m)^role querynode: 1 listed in etcd, 1 available after \S+$`, o)
		require.Regexp(t, `(?m)^NODE\s+ROLE\s+ADDRESS\s+STATE\s+FOR\s+BREAKER\s+IN-FLIGHT\s+LATENCY\s+LAST ERROR$`, o)
		require.Regexp(t, regexp.MustCompile(`(?m)^`+strconv.FormatInt(s.ServerID, 10)+`\s+querynode\s+`+
			regexp.QuoteMeta(addr)+`\s+online\s+\S+\s+closed\s+0\s+-\s+-$`), o)
		require.Regexp(t, `(?m)^health: healthy$`, o)
		require.Empty(t, errOut.String())
	})
	t.Run("no nodes", func(t *testing.T) {
		var out, errOut syncBuffer
		require.NoError(t, cmdStatus(testContext(t), []string{"-etcd", m.Endpoint(), "-role", "indexnode"}, &out, &errOut))
		require.Regexp(t, `(?m)^role indexnode: 0 listed in etcd, 0 available after \S+\n^no nodes\n^health: unhealthy`, out.String())
	})
}
