package clientmanager

import (
	"context"

	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/session"
)

// role is one dependency: the session watcher of the role and the
// goroutine that turns its events into connectors.
type role struct {
	m      *Manager
	name   string
	bal    balancer.Balancer
	shared *roleShared
	w      *session.Watcher
	log    *zap.Logger
	// rejected maps the ServerID of each record refused by admit to its
	// address; owned by run.
	rejected map[int64]string
}

// run consumes the watcher's events until ctx ends or the watcher closes.
// It alone starts and stops the role's connectors.
func (r *role) run(ctx context.Context) {
	conns := make(map[int64]*connector)
	defer func() {
		for _, cn := range conns {
			cn.stop()
		}
	}()
	for ev := range r.w.Subscribe(ctx) {
		r.handle(ctx, conns, ev)
	}
}

func (r *role) handle(ctx context.Context, conns map[int64]*connector, ev session.Event) {
	s := ev.Session
	cur := conns[s.ServerID]
	switch ev.Type {
	case session.EventAdd, session.EventUpdate:
		if !r.admit(s) { // Config.AllowedNetworks: see allowlist.go
			if cur != nil {
				cur.stop()
				delete(conns, s.ServerID)
			}
			return
		}
		if cur != nil && sameNode(cur.c.Session(), s) {
			cur.update(s)
			return
		}
		if cur != nil {
			cur.log.Info("node replaced by a new process",
				zap.Int64("new_lease_id", s.LeaseID), zap.String("new_address", s.Address),
				zap.String("new_incarnation", s.Incarnation))
			cur.stop()
		}
		conns[s.ServerID] = r.m.startConnector(ctx, r, s)
	case session.EventDel:
		r.forget(s.ServerID)
		if cur != nil {
			cur.stop()
			delete(conns, s.ServerID)
		}
	}
}

// sameNode reports whether b is a new record of a's process at the same
// address, which updates the node's Client in place. A process is one start
// (session.SameProcess): a re-registration under a new lease keeps its
// ServerID and Incarnation and is the same process; a restart is not.
func sameNode(a, b session.Session) bool {
	return session.SameProcess(a, b) && a.Address == b.Address
}
