package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/internal/embedetcd"
	"github.com/coordkit/clientmanager/session"
)

// etcdReadyTimeout bounds the embedded etcd's start.
const etcdReadyTimeout = 30 * time.Second

// cluster is the harness's etcd — a single member embedded in a child
// process, so that the figures of this process are the client's alone —
// and a client to it that counts the Range requests it makes.
type cluster struct {
	dir    string
	child  *exec.Cmd
	cli    *clientv3.Client
	ranges rangeStats
}

// startCluster runs etcd in a child process (this program with
// -etcd-child) with its data in a temporary directory.
func startCluster() (*cluster, error) {
	dir, err := os.MkdirTemp("", "cmscale-")
	if err != nil {
		return nil, fmt.Errorf("etcd data dir: %w", err)
	}
	cl := &cluster{dir: dir}
	self, err := os.Executable()
	if err != nil {
		cl.close()
		return nil, err
	}
	cl.child = exec.Command(self, "-etcd-child", dir)
	cl.child.Stderr = os.Stderr
	stdin, err := cl.child.StdinPipe() // closed when this process exits: the child exits then
	if err != nil {
		cl.close()
		return nil, err
	}
	_ = stdin
	out, err := cl.child.StdoutPipe()
	if err != nil {
		cl.close()
		return nil, err
	}
	if err := cl.child.Start(); err != nil {
		cl.close()
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cl.close()
		return nil, fmt.Errorf("etcd child: %w", err)
	}
	cl.cli, err = clientv3.New(clientv3.Config{
		Endpoints:   []string{strings.TrimSpace(line)},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(cl.ranges.intercept)},
	})
	if err != nil {
		cl.close()
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return cl, nil
}

func (cl *cluster) close() {
	if cl.cli != nil {
		_ = cl.cli.Close()
	}
	if cl.child != nil && cl.child.Process != nil {
		_ = cl.child.Process.Signal(syscall.SIGTERM)
		_ = cl.child.Wait()
	}
	_ = os.RemoveAll(cl.dir)
}

// serveEtcd is the child: it runs a single-member etcd in dir on free
// loopback ports, with a backend quota large enough for a million
// sessions, prints its client address, and serves until SIGTERM or until
// its standard input closes (the parent is gone).
func serveEtcd(dir string) error {
	e, err := embedetcd.Start(context.Background(), embedetcd.Config{Dir: dir, Name: "cmscale",
		QuotaBackendBytes: 8 << 30, ReadyTimeout: etcdReadyTimeout})
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Println(e.Endpoint())
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(gone)
	}()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	select {
	case <-gone:
	case <-term:
	case err := <-e.Err():
		return fmt.Errorf("etcd: %w", err)
	}
	return nil
}

// rangeStats counts the Range requests that reach etcd and keeps the
// slowest.
type rangeStats struct {
	n, failed atomic.Int64
	mu        sync.Mutex
	slowest   time.Duration
}

func (r *rangeStats) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if method != "/etcdserverpb.KV/Range" {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	took := time.Since(start)
	r.n.Add(1)
	if err != nil {
		r.failed.Add(1)
	}
	r.mu.Lock()
	r.slowest = max(r.slowest, took)
	r.mu.Unlock()
	return err
}

// reset starts a new count and returns nothing.
func (r *rangeStats) reset() {
	r.n.Store(0)
	r.failed.Store(0)
	r.mu.Lock()
	r.slowest = 0
	r.mu.Unlock()
}

func (r *rangeStats) max() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.slowest
}

// maxTxnOps is etcd's default limit of operations in one transaction.
const maxTxnOps = 128

// putSessions writes the sessions of role with IDs first..first+n-1 under
// cfg, without leases, addr(id) giving each one's address.
func putSessions(ctx context.Context, cli *clientv3.Client, cfg session.Config, role string,
	first int64, n int, addr func(id int64) string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for start := 0; start < n && ctx.Err() == nil; start += maxTxnOps {
		end := min(start+maxTxnOps, n)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ops := make([]clientv3.Op, 0, end-start)
			for i := start; i < end; i++ {
				id := first + int64(i)
				b, err := session.Session{ServerID: id, ServerName: role, Address: addr(id), Version: "2.4.0",
					HostName: fmt.Sprintf("host-%d", id), Incarnation: fmt.Sprintf("%016x", id)}.Encode()
				if err != nil {
					cancel(err)
					return
				}
				ops = append(ops, clientv3.OpPut(cfg.Key(role, id), string(b)))
			}
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			defer rcancel()
			if _, err := cli.Txn(rctx).Then(ops...).Commit(); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("put sessions: %w", err)
	}
	return nil
}
