package app

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/examples/internal/echo"
	"github.com/coordkit/clientmanager/startup"
)

// caller calls role's Echo through the client manager every interval
// while the Runner is Healthy (a standby coordinator does not act), and
// logs each result: the node that answered, or why no node did.
type caller struct {
	mgr      *clientmanager.Manager
	runner   *startup.Runner
	role     string
	interval time.Duration
	from     string // the message sent: who calls
	log      *zap.Logger
}

// loop calls at once when Healthy, then every interval, until ctx ends.
func (c *caller) loop(ctx context.Context) {
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for {
		if c.runner.State() == startup.StateHealthy {
			c.call(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// call makes one call, bounded by the interval, and logs it.
func (c *caller) call(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.interval)
	defer cancel()
	var node *clientmanager.Client
	start := time.Now()
	err := c.mgr.Invoke(ctx, c.role, func(ctx context.Context, cl *clientmanager.Client) error {
		node = cl
		_, err := echo.Echo(ctx, cl.Conn(), c.from)
		return err
	}, clientmanager.Idempotent()) // Echo may run twice: retry it on another node
	took := time.Since(start)
	switch {
	case err == nil:
		c.log.Info("call answered", zap.String("callee", c.role), zap.Int64("node_id", node.NodeID()),
			zap.String("address", node.Session().Address), zap.Duration("latency", took))
	case errors.Is(ctx.Err(), context.Canceled):
		// The stop began during the call: no failure of the callee.
	default:
		c.log.Warn("call failed", zap.String("callee", c.role), zap.Duration("latency", took),
			zap.String("error", err.Error())) // one line, without the stack trace
	}
}
