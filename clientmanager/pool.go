package clientmanager

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// connPool holds the connections of a node beyond the first, when
// PoolSize > 1. Calls go round robin over the first connection (the one
// the connector dialed and watches) and the pooled ones; a pooled one that
// is not dialed yet, or not READY, is stood in for by the first. Its
// connections are dialed, reaped when idle and closed by the pool's
// goroutine, which the node's connector owns.
type connPool struct {
	size  uint32
	next  atomic.Uint32
	slots []atomic.Pointer[pooledConn] // size-1 entries; nil: not dialed
	want  chan struct{}                // capacity 1: dial the missing connections

	retired []*pooledConn // taken out while busy; closed once idle (pool goroutine only)
}

// pooledConn is one pooled connection.
type pooledConn struct {
	conn     Conn
	inflight atomic.Int64 // calls on it now
	used     atomic.Bool  // a call began on it since the last idle check
	idleFrom time.Time    // pool goroutine only
}

func newConnPool(size int) *connPool {
	return &connPool{
		size:  uint32(size),
		slots: make([]atomic.Pointer[pooledConn], size-1),
		want:  make(chan struct{}, 1),
	}
}

// pick returns the connection of the next call: the pool's turn, or first
// when that turn has no usable connection. A non-nil pooledConn counts the
// call in flight; end it when the call ends.
func (p *connPool) pick(first grpc.ClientConnInterface) (grpc.ClientConnInterface, *pooledConn) {
	i := p.next.Add(1) % p.size
	if i == 0 {
		return first, nil
	}
	slot := &p.slots[i-1]
	pc := slot.Load()
	if pc == nil {
		select {
		case p.want <- struct{}{}:
		default:
		}
		return first, nil
	}
	switch pc.conn.GetState() {
	case connectivity.Ready:
	case connectivity.Idle:
		pc.conn.Connect()
		return first, nil
	default:
		return first, nil
	}
	pc.inflight.Add(1)
	if slot.Load() != pc { // reaped meanwhile
		pc.inflight.Add(-1)
		return first, nil
	}
	if !pc.used.Load() {
		pc.used.Store(true)
	}
	return pc.conn, pc
}

// end ends a call begun by pick; nil does nothing.
func (pc *pooledConn) end() {
	if pc != nil {
		pc.inflight.Add(-1)
	}
}

// runPool is the pool's goroutine: it dials the missing connections when
// a call asks for one and, every IdleTimeout/2, reaps those idle for
// IdleTimeout. It returns when ctx ends; the connector then closes every
// connection (closeAll) after the node's calls have drained.
func (cn *connector) runPool(ctx context.Context) {
	p := cn.c.pool
	var tick <-chan time.Time
	if idle := cn.m.cfg.IdleTimeout; idle > 0 {
		t := cn.m.clock.NewTicker(max(idle/2, time.Millisecond))
		defer t.Stop()
		tick = t.Chan()
	}
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			cn.reapIdle()
		case <-p.want:
			if cn.fillPool(ctx) {
				failures = 0
				continue
			}
			failures++
			t := cn.m.clock.NewTimer(cn.m.cfg.DialBackoff.Delay(failures, rand.Float64()))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.Chan():
			}
		}
	}
}

// fillPool dials every missing pooled connection, one at a time, and
// reports whether all succeeded.
func (cn *connector) fillPool(ctx context.Context) bool {
	p := cn.c.pool
	for i := range p.slots {
		if p.slots[i].Load() != nil {
			continue
		}
		conn, err := cn.dialOnce(ctx, 1)
		if err != nil {
			return false
		}
		p.slots[i].Store(&pooledConn{conn: conn, idleFrom: cn.m.clock.Now()})
		cn.log.Debug("pooled connection dialed", zap.Int("slot", i+1))
	}
	return true
}

// reapIdle closes the pooled connections that carried no call for
// IdleTimeout, and the retired ones whose calls have ended.
func (cn *connector) reapIdle() {
	p := cn.c.pool
	now := cn.m.clock.Now()
	busy := p.retired[:0]
	for _, pc := range p.retired {
		if pc.inflight.Load() > 0 {
			busy = append(busy, pc)
		} else {
			_ = pc.conn.Close()
		}
	}
	p.retired = busy
	for i := range p.slots {
		pc := p.slots[i].Load()
		if pc == nil {
			continue
		}
		if pc.used.Swap(false) || pc.inflight.Load() > 0 {
			pc.idleFrom = now
			continue
		}
		if now.Sub(pc.idleFrom) < cn.m.cfg.IdleTimeout || !p.slots[i].CompareAndSwap(pc, nil) {
			continue
		}
		cn.log.Debug("idle pooled connection closed", zap.Int("slot", i+1))
		if pc.inflight.Load() > 0 { // a call took it just before the swap
			p.retired = append(p.retired, pc)
			continue
		}
		_ = pc.conn.Close()
	}
}

// closeAll closes every pooled connection. The pool's goroutine has
// returned.
func (p *connPool) closeAll() {
	for i := range p.slots {
		if pc := p.slots[i].Swap(nil); pc != nil {
			_ = pc.conn.Close()
		}
	}
	for _, pc := range p.retired {
		_ = pc.conn.Close()
	}
	p.retired = nil
}

// open reports whether any pooled connection is open.
func (p *connPool) open() bool {
	for i := range p.slots {
		if p.slots[i].Load() != nil {
			return true
		}
	}
	return len(p.retired) > 0
}
