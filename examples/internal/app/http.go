package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/debughttp"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

// httpStopTimeout bounds the graceful stop of the debug HTTP server.
const httpStopTimeout = 2 * time.Second

// newRegistry returns the process's Prometheus registry, with the Go and
// process collectors, and the session metrics shared by its registration
// and its manager's watchers.
func newRegistry() (*prometheus.Registry, *session.Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sm, err := session.NewMetrics(reg)
	if err != nil {
		return nil, nil, err
	}
	return reg, sm, nil
}

// serveDebug serves the debug handler (debughttp) of the process on addr
// and prints "http <addr>" to stdout. The returned func stops the server
// and waits for it. mgr may be nil.
func serveDebug(addr string, mgr *clientmanager.Manager, r *startup.Runner, reg prometheus.Gatherer,
	title string, stdout io.Writer, log *zap.Logger) (stop func(), err error) {
	src := debughttp.Sources{Runner: r, Gatherer: reg}
	if mgr != nil {
		src.Manager = mgr
	}
	cfg := debughttp.DefaultConfig()
	cfg.Title = title
	h, err := debughttp.New(src, cfg)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("-%s: %w", FlagHTTPAddr, err)
	}
	fmt.Fprintln(stdout, "http", lis.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug HTTP server stopped", zap.Error(err))
		}
	})
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), httpStopTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		wg.Wait()
		_ = h.Close()
	}, nil
}
