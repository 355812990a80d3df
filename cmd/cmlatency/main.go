// Command cmlatency measures how fast the client manager reacts to
// membership changes, on an embedded etcd and real gRPC servers:
//
//   - del→offline: a node's session key is deleted; time until the node is
//     offline (its ClientOffline event is received; IsOnline is false then);
//   - add→first call: a node's session is put; time until the node is online
//     and a first health check through its client succeeded;
//   - kill→suspect: a node's server process (this program, run with -child)
//     is killed with SIGKILL while its session stays; time until the node is
//     offline.
//
// Each is measured -n times (default 100) and reported as p50, p90, p99 and
// max. Usage: go run ./cmd/cmlatency [-n 100]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/embedetcd"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

const role = "querynode"

func main() {
	child := flag.Bool("child", false, "serve the gRPC health service on 127.0.0.1:0, print the address, serve until killed")
	n := flag.Int("n", 100, "iterations of each measurement")
	flag.Parse()
	if *child {
		os.Exit(serveChild())
	}
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "cmlatency:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	dir, err := os.MkdirTemp("", "cmlatency")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	etcd, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: dir, ReadyTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer etcd.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := newServer()
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	m, err := clientmanager.New(cli, clientmanager.DefaultConfig())
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.AddDependency(role); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &harness{cli: cli, m: m, cfg: session.DefaultConfig(), events: m.WatchClients(ctx, role)}

	fmt.Printf("cmlatency: %d iterations each, embedded etcd, default Config\n", n)
	var add, del, kill []time.Duration
	for i := 0; i < n; i++ {
		a, d, err := h.addDel(int64(i+1), lis.Addr().String())
		if err != nil {
			return err
		}
		add, del = append(add, a), append(del, d)
	}
	report("add→first call", add)
	report("del→offline", del)
	for i := 0; i < n; i++ {
		k, err := h.crash(int64(n + i + 1))
		if err != nil {
			return err
		}
		kill = append(kill, k)
	}
	report("kill→suspect", kill)
	return nil
}

type harness struct {
	cli    *clientv3.Client
	m      *clientmanager.Manager
	cfg    session.Config
	events <-chan clientmanager.ClientEvent
}

// addDel puts a session of node id at addr, measures until a first call
// succeeds, then deletes it and measures until the node is offline.
func (h *harness) addDel(id int64, addr string) (add, del time.Duration, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := h.cli.Grant(ctx, 60)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _, _ = h.cli.Revoke(context.Background(), lease.ID) }()
	start := time.Now()
	if err := h.put(ctx, id, addr, lease.ID); err != nil {
		return 0, 0, err
	}
	c, err := h.wait(ctx, clientmanager.ClientOnline, id)
	if err != nil {
		return 0, 0, err
	}
	if _, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		return 0, 0, err
	}
	add = time.Since(start)

	start = time.Now()
	if _, err := h.cli.Delete(ctx, h.cfg.Key(role, id)); err != nil {
		return 0, 0, err
	}
	if _, err := h.wait(ctx, clientmanager.ClientOffline, id); err != nil {
		return 0, 0, err
	}
	del = time.Since(start)
	if h.m.IsOnline(id) {
		return 0, 0, fmt.Errorf("node %d still online after its offline event", id)
	}
	return add, del, nil
}

// crash starts a child server registered as node id, kills it and measures
// until the node is offline; its session stays until then.
func (h *harness) crash(id int64) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, addr, err := startChild()
	if err != nil {
		return 0, err
	}
	defer func() {
		_ = proc.Process.Kill()
		_ = proc.Wait()
	}()
	lease, err := h.cli.Grant(ctx, 60)
	if err != nil {
		return 0, err
	}
	defer func() { _, _ = h.cli.Revoke(context.Background(), lease.ID) }()
	if err := h.put(ctx, id, addr, lease.ID); err != nil {
		return 0, err
	}
	if _, err := h.wait(ctx, clientmanager.ClientOnline, id); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := proc.Process.Kill(); err != nil {
		return 0, err
	}
	if _, err := h.wait(ctx, clientmanager.ClientOffline, id); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (h *harness) put(ctx context.Context, id int64, addr string, lease clientv3.LeaseID) error {
	s := session.Session{ServerID: id, ServerName: role, Address: addr, LeaseID: int64(lease), Version: "2.4.0"}
	b, err := s.Encode()
	if err != nil {
		return err
	}
	_, err = h.cli.Put(ctx, h.cfg.Key(role, id), string(b), clientv3.WithLease(lease))
	return err
}

// wait returns the client of the first event of type t for node id.
func (h *harness) wait(ctx context.Context, t clientmanager.ClientEventType, id int64) (*clientmanager.Client, error) {
	for {
		select {
		case ev, ok := <-h.events:
			if !ok {
				return nil, fmt.Errorf("event channel closed")
			}
			if ev.Type == t && ev.Client.NodeID() == id {
				return ev.Client, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("node %d: no %s event: %w", id, t, ctx.Err())
		}
	}
}

func report(name string, d []time.Duration) {
	slices.Sort(d)
	at := func(p int) time.Duration { return d[max(0, (len(d)*p+99)/100-1)] } // nearest rank
	fmt.Printf("%-16s n=%d  p50=%-10s p90=%-10s p99=%-10s max=%s\n", name, len(d),
		at(50).Round(time.Microsecond), at(90).Round(time.Microsecond), at(99).Round(time.Microsecond),
		d[len(d)-1].Round(time.Microsecond))
}

func newServer() *grpc.Server {
	srv := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(startup.KeepalivePolicy()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	return srv
}

// startChild runs this program with -child and returns its address.
func startChild() (*exec.Cmd, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, "-child")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, "", fmt.Errorf("child: %w", err)
	}
	return cmd, strings.TrimSpace(line), nil
}

func serveChild() int {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(lis.Addr().String())
	if err := newServer().Serve(lis); err != nil {
		return 1
	}
	return 0
}
