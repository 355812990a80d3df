package clientmanager

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"

	"github.com/cockroachdb/errors"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/identity"
)

// serving is what the server at the other end of a connection says about
// itself through the standard health service.
type serving int

const (
	// servingUnknown: no answer yet on the current stream.
	servingUnknown serving = iota
	// servingYes: SERVING, or the server has no health service.
	servingYes
	// servingNo: NOT_SERVING (a standby, a component starting or
	// stopping) or another status.
	servingNo
)

// errNotServing marks the cause of a node that is connected but whose
// server says it is not serving: a routine state (a standby), logged at
// Info.
var errNotServing = errors.New("not serving")

// healthWatch follows the health of one connection with a
// grpc.health.v1 Watch stream (service ""), so that the connector tells
// "connected" from "serving": a READY connection whose server says
// NOT_SERVING is kept, and its node is available the moment the server
// says SERVING. Its goroutine belongs to the connector, which stops it
// before it closes the connection, and restarts its stream whenever the
// connection leaves READY: a stream left open on a transport the server
// is draining would hold up the server's GracefulStop.
//
// The stream carries the node's identity, which the server's identity
// check (identity.StreamServerInterceptor) checks before the health
// service answers: the first answer of a stream on a transport is also
// the identity check of that transport, and no separate probe is made
// (see connector.verify). Each stream belongs to a generation, the count
// of restarts when it opened; an answer of an earlier generation — a
// stream of a transport that is gone, answering late — is ignored.
type healthWatch struct {
	cn   *connector
	conn Conn

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	state    serving            // the current generation's answer
	cause    error              // why servingNo
	dirty    bool               // changed since the connector last read it
	ended    bool               // run returned: no watch holds the channel active
	wakeUp   context.CancelFunc // ends the connector's current wait
	endOpen  context.CancelFunc // ends the current stream; nil between streams
	restarts int                // restart calls: the current generation
}

// watchHealth starts watching conn's health, or returns nil when
// SuspectOnHealth is off: the node is then available whenever its
// connection is READY.
func (cn *connector) watchHealth(conn Conn) *healthWatch {
	if !cn.m.cfg.SuspectOnHealth {
		return nil
	}
	ctx, cancel := context.WithCancel(cn.wctx)
	h := &healthWatch{cn: cn, conn: conn, cancel: cancel, done: make(chan struct{})}
	cn.m.goFunc(func() {
		defer close(h.done)
		h.run(ctx)
	})
	return h
}

// stop ends the watch and waits for its goroutine. A nil watch does nothing.
func (h *healthWatch) stop() {
	if h == nil {
		return
	}
	h.cancel()
	<-h.done
}

// read returns the current generation's answer and why it is not
// serving, and clears the change flag. probe reports that the watch does
// not check the identity of the connection's transports — it is nil
// (always serving) or ended (the server has no health service) — so the
// connector must (connector.verify); otherwise an answer other than
// servingUnknown came from a stream that passed the identity check on the
// current transport.
func (h *healthWatch) read() (st serving, cause error, probe bool) {
	if h == nil {
		return servingYes, nil, true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dirty = false
	return h.state, h.cause, h.ended
}

// waitContext returns a child of parent that also ends when the health
// changes, at once if it changed since the last read.
func (h *healthWatch) waitContext(parent context.Context) (context.Context, context.CancelFunc) {
	if h == nil {
		return parent, func() {}
	}
	ctx, cancel := context.WithCancel(parent)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.wakeUp = cancel
	if h.dirty {
		cancel()
	}
	return ctx, cancel
}

// restart ends the current stream, open or opening, and forgets its
// answer at once: the connection left READY, and only a stream of the new
// generation, on its next transport, answers for it. An ended watch keeps
// its answer (servingYes: no health service) for the connection's life.
func (h *healthWatch) restart() {
	if h == nil {
		return
	}
	h.mu.Lock()
	end := h.endOpen
	h.endOpen = nil
	h.restarts++
	if !h.ended {
		h.state, h.cause = servingUnknown, nil
	}
	h.mu.Unlock()
	if end != nil {
		end()
	}
}

// keepsActive reports whether the watch holds a call on the channel, open
// or waiting for the connection (between two failed streams, for at most
// DialBackoff's wait, it holds none): grpc's idleness, which counts calls
// and waits minutes, cannot make such a channel IDLE, so a READY channel
// that goes IDLE lost its transport. A nil watch holds nothing.
func (h *healthWatch) keepsActive() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.ended
}

// end records that run returned for good, with st as the answer for the
// connection's life.
func (h *healthWatch) end(st serving) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = true
	h.setLocked(st, nil)
}

// set records the answer of a stream of generation gen, unless a restart
// made it stale.
func (h *healthWatch) set(gen int, st serving, cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.restarts {
		return
	}
	h.setLocked(st, cause)
}

func (h *healthWatch) setLocked(st serving, cause error) {
	if st == h.state && errorText(cause) == errorText(h.cause) {
		return
	}
	h.state, h.cause, h.dirty = st, cause, true
	if h.wakeUp != nil {
		h.wakeUp()
	}
}

// run keeps one Watch stream open while ctx lasts. The stream waits for the
// connection to be READY; a broken stream is opened again, at once after
// it answered, after a backoff (DialBackoff's shape) when it did not.
// A server without the health service (Unimplemented) counts as serving
// for the connection's life (the connector then checks each transport's
// identity itself); one that rejects the node's identity rejects the
// Client.
func (h *healthWatch) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		gen, answered, restarted, err := h.stream(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case restarted:
			// restart forgot the answer already.
			failures = 0
			continue
		case status.Code(err) == codes.Unimplemented:
			h.end(servingYes)
			return
		case identity.IsMismatch(err):
			h.cn.log.Info("the server at the address is another process", zap.String("cause", err.Error()))
			h.cn.c.reject()
			h.end(servingUnknown)
			return
		case h.conn.GetState() == connectivity.Shutdown:
			// Closed: by the connector, or by the dialer after a
			// failed attempt (see connector.dial); nothing to watch.
			return
		case answered && status.Code(err) == codes.Unavailable:
			// The transport under an answered stream broke: the node
			// is suspect at once, before grpc's connectivity state
			// tells, and available again when a stream says SERVING.
			h.set(gen, servingNo, errors.Wrapf(errConnectionLost, "health watch: %s", status.Convert(err).Message()))
			h.cn.log.Debug("health watch ended", zap.Error(err))
			failures = 0
			continue
		}
		h.set(gen, servingUnknown, nil)
		h.cn.log.Debug("health watch ended", zap.Error(err))
		if answered {
			failures = 0
			continue
		}
		failures++
		t := h.cn.m.clock.NewTimer(h.cn.m.cfg.DialBackoff.Delay(failures, rand.Float64()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.Chan():
		}
	}
}

// healthWatchDesc describes grpc.health.v1.Health/Watch.
var healthWatchDesc = &grpc.StreamDesc{StreamName: "Watch", ServerStreams: true}

// stream runs one Watch stream, of generation gen, until it breaks or is
// restarted; answered reports whether it delivered a status.
func (h *healthWatch) stream(ctx context.Context) (gen int, answered, restarted bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.mu.Lock()
	h.endOpen = cancel
	gen = h.restarts
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		restarted = h.restarts != gen
		h.endOpen = nil
		h.mu.Unlock()
	}()
	s, err := h.conn.NewStream(h.cn.c.target.Load().Outgoing(sctx, ""), healthWatchDesc,
		healthpb.Health_Watch_FullMethodName, grpc.WaitForReady(true))
	if err != nil {
		return gen, false, false, err
	}
	if err := s.SendMsg(&healthpb.HealthCheckRequest{}); err != nil {
		return gen, false, false, recvError(s, err)
	}
	if err := s.CloseSend(); err != nil {
		return gen, false, false, recvError(s, err)
	}
	for {
		resp := new(healthpb.HealthCheckResponse)
		if err := s.RecvMsg(resp); err != nil {
			if err == io.EOF {
				err = errors.New("health watch ended by the server")
			}
			return gen, answered, false, err
		}
		answered = true
		if resp.Status == healthpb.HealthCheckResponse_SERVING {
			h.set(gen, servingYes, nil)
		} else {
			h.set(gen, servingNo, errors.Mark(errors.Newf("health service says %s", resp.Status), errNotServing))
		}
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// recvError returns the stream's status after a failed send: grpc reports
// io.EOF from SendMsg and the real error from RecvMsg.
func recvError(s grpc.ClientStream, err error) error {
	if err != io.EOF {
		return err
	}
	if rerr := s.RecvMsg(new(healthpb.HealthCheckResponse)); rerr != nil && rerr != io.EOF {
		return rerr
	}
	return err
}
