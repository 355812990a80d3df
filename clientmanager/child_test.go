package clientmanager

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// childEnv makes the test binary a child server (see TestMain).
const childEnv = "CM_TEST_CHILD"

// runChildServer is the body of the child process of crash tests: it
// serves health and testService on 127.0.0.1:0, prints its address and
// serves until killed.
func runChildServer() int {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := grpc.NewServer(serverOptions()...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	srv.RegisterService(&testServiceDesc, &testService{entered: make(chan struct{}, 1)})
	fmt.Println(lis.Addr().String())
	if err := srv.Serve(lis); err != nil {
		return 1
	}
	return 0
}

// child is a server in another process.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// startChild runs this test binary as a child server and returns its address.
func startChild(t testing.TB) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ch := &child{cmd: cmd, done: make(chan struct{})}
	line := make(chan string, 1)
	go func() {
		defer close(ch.done)
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- strings.TrimSpace(sc.Text())
		}
		for sc.Scan() {
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-ch.done
	})
	select {
	case ch.addr = <-line:
	case <-time.After(testTimeout):
		t.Fatal("child server did not print its address")
	}
	return ch
}

func (c *child) kill(t testing.TB) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Kill())
	select {
	case <-c.done:
	case <-time.After(testTimeout):
		t.Fatal("child did not exit")
	}
}
