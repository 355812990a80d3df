package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
	etcdresolver "go.etcd.io/etcd/client/v3/naming/resolver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
)

// system is one way of finding and calling the replicas: the client
// manager, or etcd's naming resolver with grpc's round_robin.
type system interface {
	name() string
	// register puts a node serving at addr; the Registration (ours) or
	// the endpoint and its lease (the peer) is the handle.
	register(ctx context.Context, addr string) (any, error)
	// deregister is a graceful deregistration up to the write after
	// which callers must stop calling the node.
	deregister(ctx context.Context, h any) error
	// finish ends what deregister left: ours revokes the lease (Close),
	// the peer's endpoint is deleted (if still there) and its lease revoked.
	finish(ctx context.Context, h any) error
	// call is one call of the load.
	call(ctx context.Context) error
	// conn is the connection a generated stub of the role would use.
	conn() grpc.ClientConnInterface
	close()
}

// Where each system keeps its nodes in etcd.
const (
	oursRoot   = "bench/ours"
	oursRole   = "echo"
	peerTarget = "bench/peer/echo"
)

// oursSys is the client manager: sessions written by session.Register, a
// Manager with the role as a dependency, calls through Invoke. The call
// is a health Check, idempotent, and marked so: Invoke then retries it on
// another replica after any Unavailable, as grpc's retry policy does.
type oursSys struct {
	reg  *clientv3.Client // the nodes' client (registrations)
	cfg  session.Config
	m    *clientmanager.Manager
	rc   grpc.ClientConnInterface
	seen *attempts
}

func newOurs(t testing.TB, reg, watch *clientv3.Client, seen *attempts) *oursSys {
	t.Helper()
	cfg := clientmanager.DefaultConfig()
	cfg.SessionConfig.RootPath = oursRoot
	m, err := clientmanager.New(watch, cfg, clientmanager.WithDialOptions(grpc.WithStatsHandler(attemptStats{a: seen})))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddDependency(oursRole); err != nil {
		t.Fatal(err)
	}
	return &oursSys{reg: reg, cfg: cfg.SessionConfig, m: m, rc: m.RoleConn(oursRole), seen: seen}
}

func (o *oursSys) name() string { return "ours" }

func (o *oursSys) register(ctx context.Context, addr string) (any, error) {
	return session.Register(ctx, o.reg, session.Session{ServerName: oursRole, Address: addr, Version: "2.4.0"}, o.cfg)
}

func (o *oursSys) deregister(ctx context.Context, h any) error {
	return h.(*session.Registration).MarkStopping(ctx)
}

func (o *oursSys) finish(ctx context.Context, h any) error {
	return h.(*session.Registration).Close(ctx)
}

func (o *oursSys) call(ctx context.Context) error {
	return o.m.Invoke(ctx, oursRole, func(ctx context.Context, c *clientmanager.Client) error {
		o.seen.notePick(c.Session().Address)
		return c.Conn().Invoke(ctx, echoMethod, &healthpb.HealthCheckRequest{}, new(healthpb.HealthCheckResponse))
	}, clientmanager.Idempotent())
}

func (o *oursSys) conn() grpc.ClientConnInterface { return o.rc }
func (o *oursSys) close()                         { _ = o.m.Close() }

// peerSys is etcd's naming: endpoints.Manager writes an endpoint under a
// lease kept alive, the resolver feeds a grpc.ClientConn balanced by
// round_robin, optionally with a retry policy on UNAVAILABLE.
type peerSys struct {
	label string
	reg   *clientv3.Client
	em    endpoints.Manager
	cc    *grpc.ClientConn
}

// peerHandle is one registered endpoint.
type peerHandle struct {
	key   string
	lease clientv3.LeaseID
	stop  context.CancelFunc // ends the keepalive
}

const (
	roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`
	// retryPolicy is grpc's retry (gRFC A6) on UNAVAILABLE, as a user of
	// the peer would configure it: 3 attempts, the default backoff range
	// scaled to a cluster.
	retryPolicy = `{"loadBalancingConfig":[{"round_robin":{}}],
	  "methodConfig":[{"name":[{"service":"` + echoService + `"}],
	    "retryPolicy":{"maxAttempts":3,"initialBackoff":"0.01s","maxBackoff":"0.1s",
	      "backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}`
)

func newPeer(t testing.TB, label string, reg, watch *clientv3.Client, serviceConfig string, seen *attempts) *peerSys {
	t.Helper()
	em, err := endpoints.NewManager(reg, peerTarget)
	if err != nil {
		t.Fatal(err)
	}
	b, err := etcdresolver.NewBuilder(watch)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("etcd:///"+peerTarget,
		grpc.WithResolvers(b),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithStatsHandler(attemptStats{a: seen}))
	if err != nil {
		t.Fatal(err)
	}
	cc.Connect()
	return &peerSys{label: label, reg: reg, em: em, cc: cc}
}

func (p *peerSys) name() string { return p.label }

func (p *peerSys) register(ctx context.Context, addr string) (any, error) {
	lease, err := p.reg.Grant(ctx, int64(session.DefaultConfig().TTL/time.Second))
	if err != nil {
		return nil, err
	}
	h := &peerHandle{key: peerTarget + "/" + addr, lease: lease.ID}
	if err := p.em.AddEndpoint(ctx, h.key, endpoints.Endpoint{Addr: addr}, clientv3.WithLease(lease.ID)); err != nil {
		return nil, err
	}
	kctx, cancel := context.WithCancel(context.Background())
	ka, err := p.reg.KeepAlive(kctx, lease.ID)
	if err != nil {
		cancel()
		return nil, err
	}
	go func() {
		for range ka { // drained until the keepalive ends
		}
	}()
	h.stop = cancel
	return h, nil
}

func (p *peerSys) deregister(ctx context.Context, h any) error {
	return p.em.DeleteEndpoint(ctx, h.(*peerHandle).key)
}

func (p *peerSys) finish(ctx context.Context, h any) error {
	ph := h.(*peerHandle)
	ph.stop()
	if _, err := p.reg.Revoke(ctx, ph.lease); err != nil {
		return fmt.Errorf("revoke %x: %w", ph.lease, err)
	}
	return nil
}

func (p *peerSys) call(ctx context.Context) error {
	return p.cc.Invoke(ctx, echoMethod, &healthpb.HealthCheckRequest{}, new(healthpb.HealthCheckResponse))
}

func (p *peerSys) conn() grpc.ClientConnInterface { return p.cc }
func (p *peerSys) close()                         { _ = p.cc.Close() }
