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
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
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
type healthWatch struct {
	cn   *connector
	conn Conn

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	state    serving
	cause    error              // why servingNo
	dirty    bool               // changed since the connector last read it
	wakeUp   context.CancelFunc // ends the connector's current wait
	endOpen  context.CancelFunc // ends the current stream; nil between streams
	restarts int                // restart calls, for a stream to tell its end
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

// read returns the current answer and why it is not serving, and clears
// the change flag. A nil watch is always serving.
func (h *healthWatch) read() (serving, error) {
	if h == nil {
		return servingYes, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dirty = false
	return h.state, h.cause
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
// answer: the connection left READY, and the next stream must run on its
// next transport.
func (h *healthWatch) restart() {
	if h == nil {
		return
	}
	h.mu.Lock()
	end := h.endOpen
	h.endOpen = nil
	h.restarts++
	h.mu.Unlock()
	if end != nil {
		end()
	}
}

func (h *healthWatch) set(st serving, cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
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
// for the connection's life; one that rejects the node's identity rejects
// the Client.
func (h *healthWatch) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		answered, restarted, err := h.stream(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case restarted:
			h.set(servingUnknown, nil)
			failures = 0
			continue
		case status.Code(err) == codes.Unimplemented:
			h.set(servingYes, nil)
			return
		case IsIdentityMismatch(err):
			h.cn.log.Info("the server at the address is another process", zap.String("cause", err.Error()))
			h.cn.c.reject()
			return
		}
		h.set(servingUnknown, nil)
		h.cn.log.Debug("health watch ended", zap.Error(err))
		if answered {
			failures = 0
			continue
		}
		failures++
		t := h.cn.m.clock.NewTimer(h.cn.m.cfg.DialBackoff.Backoff(failures, rand.Float64()))
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

// stream runs one Watch stream until it breaks or is restarted; answered
// reports whether it delivered a status.
func (h *healthWatch) stream(ctx context.Context) (answered, restarted bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.mu.Lock()
	h.endOpen = cancel
	gen := h.restarts
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		restarted = h.restarts != gen
		h.endOpen = nil
		h.mu.Unlock()
	}()
	s, err := h.conn.NewStream(OutgoingIdentity(sctx, h.cn.c.Session()), healthWatchDesc,
		healthpb.Health_Watch_FullMethodName, grpc.WaitForReady(true))
	if err != nil {
		return false, false, err
	}
	if err := s.SendMsg(&healthpb.HealthCheckRequest{}); err != nil {
		return false, false, recvError(s, err)
	}
	if err := s.CloseSend(); err != nil {
		return false, false, recvError(s, err)
	}
	for {
		resp := new(healthpb.HealthCheckResponse)
		if err := s.RecvMsg(resp); err != nil {
			if err == io.EOF {
				err = errors.New("health watch ended by the server")
			}
			return answered, false, err
		}
		answered = true
		if resp.Status == healthpb.HealthCheckResponse_SERVING {
			h.set(servingYes, nil)
		} else {
			h.set(servingNo, errors.Mark(errors.Newf("health service says %s", resp.Status), errNotServing))
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
