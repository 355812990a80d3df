package clientmanager

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/retry"
	"github.com/coordkit/clientmanager/session"
)

// connector is the goroutine of one process of one node (one ServerID and
// Incarnation, whatever its lease): it dials the node, watches its
// connection, and closes it when the node leaves.
type connector struct {
	m   *Manager
	c   *Client
	log *zap.Logger

	ctx    context.Context // ends when the node leaves or the manager closes
	cancel context.CancelFunc
	// wctx also ends when the server rejects the Client's identity.
	wctx   context.Context
	reject context.CancelFunc
	kick   chan struct{} // capacity 1: dial again now
}

// startConnector adds s's node to the registry and starts its goroutine.
// It runs in the role's goroutine.
func (m *Manager) startConnector(parent context.Context, r *role, s session.Session) *connector {
	log := r.log
	if log.Core().Enabled(zapcore.FatalLevel) { // not a no-op logger: worth the node's fields
		log = log.With(zap.Int64("node_id", s.ServerID), zap.String("incarnation", s.Incarnation),
			zap.Int64("lease_id", s.LeaseID), zap.String("address", s.Address))
	}
	c := m.newNodeClient(s, r.bal, r.shared, log)
	cn := &connector{
		m:    m,
		c:    c,
		log:  log,
		kick: make(chan struct{}, 1),
	}
	cn.ctx, cn.cancel = context.WithCancel(parent)
	cn.wctx, cn.reject = context.WithCancel(cn.ctx)
	c.onReject = cn.reject
	m.reg.addMember(c)
	cn.log.Info("node added")
	m.goFunc(cn.run)
	return cn
}

// update records a new record of the same process — such as Stopping set,
// or a new lease after a lost one — in place: the Client, its connection
// and its calls in flight stay. Unless the node is stopping, an
// unreachable node is dialed again at once.
func (cn *connector) update(s session.Session) {
	old := cn.c.Session()
	cn.logTransition(cn.m.reg.setSession(cn.c, s), nil)
	if s.LeaseID != old.LeaseID {
		cn.log.Info("node re-registered under a new lease; its client is kept",
			zap.Int64("new_lease_id", s.LeaseID))
	}
	if s.Stopping {
		return
	}
	select {
	case cn.kick <- struct{}{}:
	default:
	}
}

// stop removes the node: it leaves the registry, the Client takes no new
// call, and its goroutine closes the connection at once, which ends the
// calls in flight with ErrNodeGone.
func (cn *connector) stop() {
	cn.logTransition(cn.m.reg.remove(cn.c), nil)
	cn.c.kill(ErrNodeGone)
	cn.cancel()
}

// run is the node's goroutine: connect, watch, and on the way out drain and
// close the connection. With PoolSize > 1 it starts the pool's goroutine
// and waits for it before closing the pooled connections too.
func (cn *connector) run() {
	var poolDone chan struct{}
	if cn.c.pool != nil {
		poolDone = make(chan struct{})
		cn.m.goFunc(func() {
			defer close(poolDone)
			cn.runPool(cn.wctx)
		})
	}
	var conn Conn
	for {
		var hw *healthWatch
		conn, hw = cn.connect()
		if conn == nil {
			break
		}
		cn.c.setConn(conn)
		if !cn.watch(conn, hw) {
			break
		}
		// The connection shut down under us: dial again.
		cn.c.setConn(nil)
		_ = conn.Close()
		conn = nil
	}
	if cn.ctx.Err() == nil {
		// Identity rejected: the node stays listed, as gone, until etcd
		// removes or replaces it.
		cn.setState(NodeGone, errors.New("identity rejected by the server at the address"))
	} else {
		cn.logTransition(cn.m.reg.remove(cn.c), nil)
	}
	cn.c.kill(ErrNodeGone)
	if poolDone != nil {
		<-poolDone
	}
	cn.drainAndClose(conn)
	<-cn.ctx.Done()
	cn.logTransition(cn.m.reg.remove(cn.c), nil)
}

// connect dials until the connection is READY and returns it, with its
// health watch when the dialer started one, or returns nil when wctx ends.
// After DialAttempts failed attempts the node is unreachable: it is
// probed once every ReprobeInterval, and dialed again from scratch when
// kicked.
func (cn *connector) connect() (Conn, *healthWatch) {
	for {
		select {
		case <-cn.kick:
		default:
		}
		cn.setState(NodeConnecting, nil)
		conn, hw, err := cn.dial(cn.m.cfg.DialAttempts)
		for conn == nil {
			if cn.wctx.Err() != nil {
				return nil, nil
			}
			cn.setState(NodeUnreachable, err)
			t := cn.m.clock.NewTimer(cn.m.cfg.ReprobeInterval)
			select {
			case <-cn.wctx.Done():
				t.Stop()
				return nil, nil
			case <-cn.kick:
				t.Stop()
			case <-t.Chan():
				conn, hw, err = cn.dial(1)
				continue
			}
			break // kicked: dial again from scratch
		}
		if conn != nil {
			return conn, hw
		}
	}
}

// dial makes up to attempts attempts with DialBackoff between them. The
// health watch of an attempt starts as soon as the dialer made its
// connection (see withConnOpened), and is stopped when the attempt fails.
func (cn *connector) dial(attempts int) (Conn, *healthWatch, error) {
	p := retry.Policy{Backoff: cn.m.cfg.DialBackoff, Attempts: attempts}
	var conn Conn
	var hw *healthWatch
	n := 0
	err := retry.Do(cn.wctx, p, func(ctx context.Context) error {
		n++
		var early *healthWatch
		if cn.m.cfg.SuspectOnHealth {
			ctx = withConnOpened(ctx, func(c Conn) { early = cn.watchHealth(c) })
		}
		c, err := cn.dialOnce(ctx, n)
		if err != nil || (early != nil && early.conn != c) {
			early.stop()
			early = nil
		}
		conn, hw = c, early
		return err
	}, retry.WithClock(cn.m.clock))
	if err != nil {
		return nil, nil, err
	}
	return conn, hw, nil
}

// dialOnce makes one attempt: it waits for a dial slot, then dials within
// DialTimeout. The slot is held while the connection is being opened, at
// most DialSlotTimeout (see Config.MaxParallelDials); the attempt goes on
// without it until READY.
func (cn *connector) dialOnce(ctx context.Context, attempt int) (Conn, error) {
	slot, err := acquireDialSlot(ctx, cn.m.dialSem)
	if err != nil {
		return nil, err
	}
	defer slot.release()
	st := cn.m.clock.AfterFunc(cn.m.cfg.DialSlotTimeout, slot.release)
	defer st.Stop()
	actx, cancel := withTimeout(ctx, cn.m.clock, cn.m.cfg.DialTimeout)
	defer cancel()
	// Every line of the attempt names it; the dialer finds its ID with
	// identity.RequestIDFrom.
	dialID := cn.m.reqIDs.Next()
	actx = identity.WithRequestID(actx, dialID)
	log := cn.log
	if log.Core().Enabled(zapcore.DebugLevel) {
		log = log.With(zap.String("correlation_id", dialID), zap.Int("attempt", attempt))
		log.Debug("dial attempt started")
	}
	var conn Conn
	if sd, ok := cn.m.dialer.(slotDialer); ok {
		conn, err = sd.dialSlot(actx, cn.c.Session(), slot)
	} else {
		conn, err = cn.m.dialer.Dial(actx, cn.c.Session())
	}
	if err == nil && conn == nil {
		err = errors.New("clientmanager: dialer returned no connection")
	}
	cn.m.metrics.dial(cn.c.role, err, ctx.Err() != nil)
	if err != nil {
		if ctx.Err() == nil {
			log.Debug("dial attempt failed", zap.Error(err))
		}
		return nil, err
	}
	log.Debug("dial attempt connected")
	return conn, nil
}

// watch follows conn's state, and its server's health (hw, or a watch it
// starts when nil), until wctx ends (false) or the connection shuts down
// (true). The node is available while the connection is READY, the server
// accepted its identity (once per transport, before the node is
// published) and, with SuspectOnHealth, the server says SERVING. With the
// health watch, its stream's first answer on a transport is that
// transport's identity check: the node is online on the first SERVING,
// one round trip after READY. Without it (or with a server that has no
// health service) verify makes the check.
//
//   - READY but NOT_SERVING: connected, not serving (a standby, a
//     component starting). The node is suspect; the connection is kept,
//     not redialed, and the node is available the moment the health
//     watch says SERVING.
//   - IDLE: no failure. A connection with no call for a while goes IDLE
//     (not ours: the default dialer turns idleness off); it is told to
//     reconnect, and the node keeps its state while it does. With the
//     health watch, a call that keeps the channel active, IDLE is a lost
//     transport (grpc's pick_first goes IDLE then): the node is suspect.
//   - CONNECTING after READY, or TRANSIENT_FAILURE: the connection broke;
//     the node is suspect until it is READY again. A failure names grpc's
//     last connection error.
func (cn *connector) watch(conn Conn, hw *healthWatch) bool {
	if hw == nil {
		hw = cn.watchHealth(conn)
	}
	defer hw.stop()
	verified, idle := false, false
	for {
		st := conn.GetState()
		if st != connectivity.Ready {
			verified = false
			hw.restart()
		}
		switch st {
		case connectivity.Ready:
			idle = false
			health, cause, probe := hw.read()
			if probe && !verified {
				if !cn.verify(conn) {
					return false // rejected: wctx has ended
				}
				verified = true
				if conn.GetState() != connectivity.Ready {
					continue // lost while verifying
				}
				health, cause, _ = hw.read()
			}
			switch health {
			case servingYes:
				cn.setState(NodeOnline, nil)
			case servingNo:
				cn.setState(NodeSuspect, cause)
			}
			// servingUnknown: no answer yet; the state waits for it.
		case connectivity.Idle:
			if hw.keepsActive() {
				// Not idleness: the health watch is a call. The
				// transport was lost; suspect until READY again.
				cn.setState(NodeSuspect, errConnectionLost)
			} else {
				idle = true
			}
			conn.Connect()
		case connectivity.Connecting:
			if !idle {
				cn.setState(NodeSuspect, errConnectionLost)
			}
		case connectivity.TransientFailure:
			idle = false
			cn.setState(NodeSuspect, cn.connectError(conn))
		case connectivity.Shutdown:
			cn.setState(NodeSuspect, errors.New("connection shut down"))
			return true
		}
		changed, ok := cn.waitChange(conn, st, hw)
		if !ok {
			return false
		}
		if changed && st == connectivity.Ready {
			// It left READY, if only for a moment: a new transport, to
			// verify and watch again.
			verified = false
			hw.restart()
		}
	}
}

// errConnectionLost is why a node whose connection left READY for
// CONNECTING is suspect: grpc tells no more until it fails or recovers.
var errConnectionLost = errors.New("connection lost; reconnecting")

// waitChange waits until conn's state changed from st (changed), the
// health changed, or wctx ended (not ok).
func (cn *connector) waitChange(conn Conn, st connectivity.State, hw *healthWatch) (changed, ok bool) {
	ctx, cancel := hw.waitContext(cn.wctx)
	defer cancel()
	changed = conn.WaitForStateChange(ctx, st)
	return changed, cn.wctx.Err() == nil
}

// connectError returns why conn is in TRANSIENT_FAILURE, as grpc tells a
// call: the last connection error, such as "connection refused".
func (cn *connector) connectError(conn Conn) error {
	ctx, cancel := withTimeout(cn.wctx, cn.m.clock, connectErrorTimeout)
	defer cancel()
	if err := connectError(ctx, conn); err != nil {
		return err
	}
	return errors.New("connection TRANSIENT_FAILURE")
}

// connectErrorTimeout bounds connectError, which in TRANSIENT_FAILURE
// answers at once.
const connectErrorTimeout = time.Second

// verify asks the server at the other end of conn whether it is the node's
// process, on every (re)connect before the node is published, when the
// health watch does not (SuspectOnHealth off, or a server without the
// health service): a grpc health Check carrying the node's identity,
// which the server's identity check (identity.Check) answers. The health
// watch's stream carries the same identity, and its first answer on a
// transport is that check. After a process dies, its connection
// reconnects to whatever serves at the address next; only this check tells
// that it is another process. An identity mismatch rejects the Client, as
// a rejected call does, and verify returns false. Any other answer —
// SERVING or not, Unimplemented, a transport error, DialTimeout passing —
// is no verdict on identity: the connection's state and the calls decide.
func (cn *connector) verify(conn Conn) bool {
	ctx, cancel := withTimeout(cn.wctx, cn.m.clock, cn.m.cfg.DialTimeout)
	defer cancel()
	err := conn.Invoke(cn.c.target.Load().Outgoing(ctx, ""), identityProbeMethod,
		new(healthpb.HealthCheckRequest), new(healthpb.HealthCheckResponse))
	if !identity.IsMismatch(err) {
		return true
	}
	cn.log.Info("the server at the address is another process", zap.String("cause", err.Error()))
	cn.c.reject()
	return false
}

// identityProbeMethod is the method verify calls.
const identityProbeMethod = healthpb.Health_Check_FullMethodName

// drainAndClose closes conn and the pooled connections of the node, which
// left (Client.kill): closing them is what ends the unary calls in flight
// on them, with ErrNodeGone (see Client.outcome); nothing waits for them.
func (cn *connector) drainAndClose(conn Conn) {
	pool := cn.c.pool
	if conn == nil && (pool == nil || !pool.open()) {
		return
	}
	if pool != nil {
		pool.closeAll()
	}
	if conn == nil {
		return
	}
	if err := conn.Close(); err != nil {
		cn.log.Debug("closing the connection failed", zap.Error(err))
	}
}

func (cn *connector) setState(st NodeState, err error) {
	cn.logTransition(cn.m.reg.setState(cn.c, st, err), err)
}

// logTransition logs a change of the node's state, once, with its cause
// in words. Losing a member that is not stopping (suspect, unreachable) is
// a warning, unless its server only says it is not serving (a standby);
// every step of a planned departure — Stopping, a connection
// going away after it, the removal — is Info. A removed node has no
// transitions left to log. The cause is a plain string: zap.Error of a
// cockroachdb error would add its stack trace (errorVerbose) to a routine
// line; the dial attempts, at debug level, carry it.
func (cn *connector) logTransition(t transition, err error) {
	if !t.changed {
		return
	}
	level := zap.InfoLevel
	if (t.to == NodeSuspect || t.to == NodeUnreachable) && !cn.c.Session().Stopping && !errors.Is(err, errNotServing) {
		level = zap.WarnLevel
	}
	ce := cn.log.Check(level, "node state changed")
	if ce == nil {
		return // not logged: no fields to build
	}
	fields := []zap.Field{zap.Stringer("from", t.from), zap.Stringer("to", t.to)}
	if err != nil {
		fields = append(fields, zap.String("cause", err.Error()))
	}
	ce.Write(fields...)
}
