package integration

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

const (
	role       = "querynode"
	echoName   = "integration.Echo"
	methodEcho = "/" + echoName + "/Echo"
	waitFor    = 30 * time.Second
)

// echoDesc is a one-method service: Echo returns its request.
var echoDesc = grpc.ServiceDesc{
	ServiceName: echoName,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { return in, nil }
			if ic == nil {
				return h(ctx, in)
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{FullMethod: methodEcho}, h)
		},
	}},
}

// sessionConfig is the session layout of every test: TTL ttl, quick retries.
func sessionConfig(ttl time.Duration) session.Config {
	sc := session.DefaultConfig()
	sc.RootPath = "integration/meta"
	sc.TTL = ttl
	sc.RequestTimeout = time.Second
	sc.Retry.Initial = 10 * time.Millisecond
	sc.Retry.Max = 200 * time.Millisecond
	sc.ReregisterBackoff.Initial = 50 * time.Millisecond
	sc.ReregisterBackoff.Max = 500 * time.Millisecond
	return sc
}

type nopComponent struct{}

func (nopComponent) Init(context.Context) error  { return nil }
func (nopComponent) Start(context.Context) error { return nil }
func (nopComponent) Stop(context.Context) error  { return nil }

// node is one component run by startup.Runner on a real gRPC server, with
// an etcd client of its own, as a separate process would have.
type node struct {
	r      *startup.Runner
	cancel context.CancelFunc
	done   chan error
}

func startNode(t *testing.T, endpoints []string, sc session.Session, cfg session.Config) *node {
	t.Helper()
	cli := etcdtest.NewClient(t, endpoints...)
	scfg := startup.DefaultConfig()
	scfg.Session = sc
	scfg.SessionConfig = cfg
	scfg.StopTimeout = 10 * time.Second
	r, err := startup.New(cli, nil, scfg, nopComponent{})
	require.NoError(t, err)
	srv := grpc.NewServer(r.ServerOptions()...)
	srv.RegisterService(&echoDesc, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- r.Run(ctx, srv, lis) }()
	t.Cleanup(func() { _ = n.stop() })
	wctx, wcancel := context.WithTimeout(context.Background(), waitFor)
	defer wcancel()
	require.NoError(t, r.WaitForState(wctx, startup.StateHealthy))
	return n
}

// stop stops the node gracefully and returns Run's result; idempotent.
func (n *node) stop() error {
	n.cancel()
	err, ok := <-n.done
	if ok {
		close(n.done)
	}
	return err
}

// newManager returns a client manager of role that counts the TCP
// connections it opens and logs to an observer.
func newManager(t *testing.T, endpoints []string, cfg session.Config) (*clientmanager.Manager, *atomic.Int64, *observer.ObservedLogs) {
	t.Helper()
	dials := &atomic.Int64{}
	var d net.Dialer
	counting := func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, "tcp", addr)
	}
	m, logs := newManagerOf(t, endpoints, cfg, role, counting)
	return m, dials, logs
}

// newManagerOf returns a client manager of one role that dials through
// dial and logs to an observer; it is closed by t.Cleanup.
func newManagerOf(t *testing.T, endpoints []string, cfg session.Config, role string,
	dial func(ctx context.Context, addr string) (net.Conn, error)) (*clientmanager.Manager, *observer.ObservedLogs) {
	t.Helper()
	cli := etcdtest.NewClient(t, endpoints...)
	mc := clientmanager.DefaultConfig()
	mc.SessionConfig = cfg
	core, logs := observer.New(zapcore.InfoLevel)
	m, err := clientmanager.New(cli, mc, clientmanager.WithDialOptions(grpc.WithContextDialer(dial)),
		clientmanager.WithLogger(zap.New(core)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	require.NoError(t, m.AddDependency(role))
	return m, logs
}

// outcome is one call's result.
type outcome struct {
	start, at time.Time // when Invoke was called and returned
	node      int64     // the node of the last attempt; 0 when none was made
	addr      string    // its address
	attempts  int
	tried     []attemptAt // every attempt, in order
	err       error
}

// attemptAt is one attempt of a call: the node's address and when the
// attempt began.
type attemptAt struct {
	addr string
	at   time.Time
}

// loadSpec says what a load calls, how often and for how long each call.
type loadSpec struct {
	role       string
	method     string        // full method name of a unary method that takes and returns a StringValue
	goroutines int           // callers
	pace       time.Duration // each caller calls at most once per pace
	timeout    time.Duration // of each call (Invoke's ctx)
}

// load calls a role through Invoke from several goroutines until
// stopped, and records every outcome.
type load struct {
	mu       sync.Mutex
	outcomes []outcome
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// startLoad calls the in-process nodes' Echo, each call bounded by 5 s.
func startLoad(m *clientmanager.Manager, goroutines int, pace time.Duration) *load {
	return startLoadOf(m, loadSpec{role: role, method: methodEcho, goroutines: goroutines, pace: pace, timeout: 5 * time.Second})
}

// startLoadOf starts the load of spec. Every call is Idempotent: Echo may
// run twice, so a retry may go to another replica whatever the failure.
func startLoadOf(m *clientmanager.Manager, spec loadSpec) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for range spec.goroutines {
		l.wg.Go(func() {
			tick := time.NewTicker(spec.pace)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				o := outcome{start: time.Now()}
				cctx, ccancel := context.WithTimeout(ctx, spec.timeout)
				o.err = m.Invoke(cctx, spec.role, func(ctx context.Context, c *clientmanager.Client) error {
					o.node, o.addr = c.NodeID(), c.Session().Address
					o.attempts++
					o.tried = append(o.tried, attemptAt{addr: o.addr, at: time.Now()})
					return c.Conn().Invoke(ctx, spec.method, wrapperspb.String("x"), new(wrapperspb.StringValue))
				}, clientmanager.Idempotent())
				ccancel()
				o.at = time.Now()
				if ctx.Err() != nil {
					return // the load was stopped during the call
				}
				l.mu.Lock()
				l.outcomes = append(l.outcomes, o)
				l.mu.Unlock()
			}
		})
	}
	return l
}

// stop ends the load and returns the calls made and those that failed.
func (l *load) stop() (calls int, failed []outcome) {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.outcomes {
		if o.err != nil {
			failed = append(failed, o)
		}
	}
	return len(l.outcomes), failed
}

// count returns the number of calls recorded so far.
func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.outcomes)
}

// offlineWatch records every ClientOffline event of role.
type offlineWatch struct {
	n      atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
}

func watchOffline(m *clientmanager.Manager) *offlineWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &offlineWatch{cancel: cancel, done: make(chan struct{})}
	ch := m.WatchClients(ctx, role)
	go func() {
		defer close(w.done)
		for ev := range ch {
			if ev.Type == clientmanager.ClientOffline {
				w.n.Add(1)
			}
		}
	}()
	return w
}

func (w *offlineWatch) stop() int64 {
	w.cancel()
	<-w.done
	return w.n.Load()
}

// sessionsOf lists role's sessions through cli, keyed by ServerID.
func sessionsOf(t *testing.T, cli *clientv3.Client, cfg session.Config) map[int64]session.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ss, _, err := session.List(ctx, cli, cfg, role)
	if err != nil {
		return nil
	}
	out := make(map[int64]session.Session, len(ss))
	for _, s := range ss {
		out[s.ServerID] = s
	}
	return out
}

// deletes counts Delete events under prefix from now on.
type deletes struct {
	n      atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
}

func watchDeletes(t *testing.T, cli *clientv3.Client, prefix string) *deletes {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &deletes{cancel: cancel, done: make(chan struct{})}
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(),
		clientv3.WithRev(etcdtest.CurrentRevision(t, cli)+1))
	go func() {
		defer close(d.done)
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					d.n.Add(1)
				}
			}
		}
	}()
	return d
}

func (d *deletes) stop() int64 {
	d.cancel()
	<-d.done
	return d.n.Load()
}

const zapErrorLevel = zapcore.ErrorLevel

// waitOnline waits until n nodes of role are online.
func waitOnline(t *testing.T, m *clientmanager.Manager, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(m.GetClients(role)) == n }, waitFor, 5*time.Millisecond,
		"%d nodes online", n)
}
