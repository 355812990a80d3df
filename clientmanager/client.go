package clientmanager

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/clientmanager/bulkhead"
	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

// Client is the client of one process of one node: its session and its
// connection. A process is one start, identified by ServerID and
// Incarnation (see session.SameProcess): when it re-registers under a new
// lease its Client is updated in place — same Client, same connection,
// calls in flight kept. A restarted process (a new Incarnation, or for a
// record without one a new LeaseID) or a new Address is a new Client.
// Clients are shared: do not change what Session returns.
type Client struct {
	id   int64
	role string
	sess atomic.Pointer[session.Session]
	// target is sess's identity as calls carry it, computed once per
	// record (storeSession), not per call.
	target atomic.Pointer[identity.Target]
	raw    atomic.Pointer[rawConn]
	bal    balancer.Balancer // the role's; nil for a test client
	node   nodeConn          // guarded by the registry's mutex

	// The node's resilience; nil for a test client (NewClientForTest),
	// which is never in the registry.
	brk    *breaker.Breaker
	bh     *bulkhead.Bulkhead
	shared *roleShared
	pool   *connPool // nil unless PoolSize > 1
	health nodeHealth

	// gone is set when the node leaves (kill): the Client takes no call
	// any more, and a call that fails because its connection was closed
	// under it (how the connector ends the node's unary calls in flight)
	// fails with ErrNodeGone. life ends at the same moment, with cause
	// ErrNodeGone, and ends the node's streams.
	gone     atomic.Bool
	life     context.Context
	killLife context.CancelCauseFunc
	calls    callTracker

	// onReject tells the node's connector that the server rejected the
	// Client's identity; nil for a test client.
	onReject   func()
	rejectOnce sync.Once
}

// rawConn boxes the connection so that it can sit behind an atomic pointer.
type rawConn struct{ grpc.ClientConnInterface }

func newClient(s session.Session, bal balancer.Balancer) *Client {
	c := &Client{id: s.ServerID, role: s.ServerName, bal: bal}
	c.storeSession(s)
	c.life, c.killLife = context.WithCancelCause(context.Background())
	return c
}

// NewClientForTest returns a Client of s whose calls go to conn, for unit
// tests of call sites (with a mock of Clients). It is online and never
// removed; conn may be any grpc.ClientConnInterface.
func NewClientForTest(s session.Session, conn grpc.ClientConnInterface) *Client {
	c := newClient(s, nil)
	c.setConn(conn)
	c.node.state = NodeOnline
	return c
}

// NodeID returns the node's ServerID.
func (c *Client) NodeID() int64 { return c.id }

// Role returns the node's role (its session's ServerName).
func (c *Client) Role() string { return c.role }

// Session returns the node's session record, as last seen in etcd (its
// LeaseID is the latest lease of the process). Its ServerLabels map is
// shared: read it, do not change it.
func (c *Client) Session() session.Session { return *c.sess.Load() }

// Conn returns the connection to the node. Every call made through it
// carries the node's ServerID, Incarnation and current LeaseID (see
// identity.Target), and the request ID of its context when it has one
// (identity.RequestIDFrom; a call of Invoke or RoleConn always has one).
// A call in flight when the node leaves fails with ErrNodeGone: the
// node's connection is closed. Calls made before the node is connected,
// or after it left, fail with codes.Unavailable. With Config.PoolSize > 1 calls go round robin
// over the node's connections. Calls go out as they are: the breaker,
// bulkhead and retries apply to calls made under Invoke, not to the
// connection. A call counts as in flight (NodeStatus.InFlight, the drain
// before a connection is closed) until it returns or, for a stream, until
// it ends as grpc.ClientConn.NewStream defines the end: its last
// response received (CloseAndRecv, or RecvMsg returning an error), an
// error from SendMsg or Header, or its context ended.
func (c *Client) Conn() grpc.ClientConnInterface { return (*clientConn)(c) }

// storeSession records s, a record of the Client's process, and its
// identity.
func (c *Client) storeSession(s session.Session) {
	c.target.Store(identity.NewTarget(s))
	c.sess.Store(&s)
}

// kill marks the Client gone, with cause the reason: it takes no call any
// more and its streams end. Its connector then closes its connection,
// which ends its unary calls in flight (see Client.outcome).
func (c *Client) kill(cause error) {
	c.gone.Store(true)
	c.killLife(cause)
}

// isGone reports whether the node left.
func (c *Client) isGone() bool { return c.gone.Load() }

func (c *Client) setConn(conn grpc.ClientConnInterface) {
	if conn == nil {
		c.raw.Store(nil)
		return
	}
	c.raw.Store(&rawConn{conn})
}

func (c *Client) conn() grpc.ClientConnInterface {
	if r := c.raw.Load(); r != nil {
		return r.ClientConnInterface
	}
	return nil
}

// reject tells the connector, once, that the server refused this Client's
// identity: the process at the address is not this one.
func (c *Client) reject() {
	if c.onReject != nil {
		c.rejectOnce.Do(c.onReject)
	}
}

// bind returns a child of parent that is also cancelled, with the cause
// ErrNodeGone, when the node leaves; release must be called when the
// stream ends. Unary calls are not bound: closing the connection ends
// them.
func (c *Client) bind(parent context.Context) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancelCause(parent)
	stop := context.AfterFunc(c.life, func() { cancel(context.Cause(c.life)) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// callTracker counts the calls in flight on a Client (NodeStatus.InFlight).
type callTracker struct {
	n atomic.Int64
}

func (t *callTracker) begin() { t.n.Add(1) }

func (t *callTracker) end() { t.n.Add(-1) }

func (t *callTracker) inFlight() int64 { return t.n.Load() }
