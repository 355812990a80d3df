package debughttp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/coordkit/clientmanager/startup"
)

// Sources are what a Handler shows. Each may be nil: without a Manager no
// role is listed, without a Runner /readyz answers ready and no process is
// shown, without a Gatherer /metrics answers 404.
type Sources struct {
	Manager  Manager
	Runner   Runner
	Gatherer prometheus.Gatherer
}

// Option sets a hook of New.
type Option func(*options)

type options struct {
	clock clockwork.Clock
}

// WithClock sets the clock of the event times and of the polling.
// Default: the real clock.
func WithClock(c clockwork.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// Handler is the http.Handler of the debug endpoints; see the package doc.
// Close stops its goroutines.
type Handler struct {
	src   Sources
	cfg   Config
	clock clockwork.Clock
	mux   *http.ServeMux
	rec   *recorder

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New returns a Handler of src and starts its event recorder: a goroutine
// that polls the manager every cfg.PollInterval, and one that follows the
// Runner's transitions when it can report them.
func New(src Sources, cfg Config, opts ...Option) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{clock: clockwork.NewRealClock()}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Handler{src: src, cfg: cfg, clock: o.clock, rec: newRecorder(cfg.Events), cancel: cancel}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.HandleFunc("GET /metrics", h.metrics)
	h.mux.HandleFunc("GET /debug/clientmanager", h.json)
	h.mux.HandleFunc("GET /debug/clientmanager/ui", h.ui)
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "debug/clientmanager/ui", http.StatusFound)
	})

	if ts, ok := src.Runner.(transitionSource); ok {
		trs := ts.Subscribe(ctx) // closed when ctx ends or the Runner closes
		role := src.Runner.Session().ServerName
		h.wg.Go(func() {
			for tr := range trs {
				h.rec.transition(role, tr)
			}
		})
	}
	if cfg.PollInterval > 0 {
		h.wg.Go(func() { h.poll(ctx) })
	}
	return h, nil
}

// ServeHTTP serves the endpoints of the package doc.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close stops the event recorder and waits for its goroutines. The
// endpoints keep answering. Idempotent; returns nil.
func (h *Handler) Close() error {
	h.closeOnce.Do(func() {
		h.cancel()
		h.wg.Wait()
	})
	return nil
}

// poll records the changes of the manager's nodes every PollInterval
// until ctx ends.
func (h *Handler) poll(ctx context.Context) {
	t := h.clock.NewTicker(h.cfg.PollInterval)
	defer t.Stop()
	for {
		h.observe()
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

// observe reads the sources once, records what changed and returns the
// nodes' status for a snapshot.
func (h *Handler) observe() Snapshot {
	now := h.clock.Now()
	snap := Snapshot{Title: h.cfg.Title, Time: now, Roles: []Role{}}
	if r := h.src.Runner; r != nil {
		snap.Process = process(r)
		if _, ok := r.(transitionSource); !ok {
			h.rec.runnerState(now, snap.Process.Role, r.State())
		}
	}
	if m := h.src.Manager; m != nil {
		st := m.Status()
		h.rec.observe(now, st)
		snap.Roles = roles(m, st)
	}
	return snap
}

// Snapshot returns what /debug/clientmanager serves, recording the
// changes since the last read first.
func (h *Handler) Snapshot() Snapshot {
	snap := h.observe()
	snap.Events = h.rec.events()
	return snap
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	plain(w, http.StatusOK, "ok")
}

// readyz answers 200 only while the Runner is Healthy: a standby, a
// component starting or stopping, or an Abnormal one is not ready.
func (h *Handler) readyz(w http.ResponseWriter, _ *http.Request) {
	if h.src.Runner == nil {
		plain(w, http.StatusOK, "ready")
		return
	}
	if s := h.src.Runner.State(); s != startup.StateHealthy {
		plain(w, http.StatusServiceUnavailable, "not ready: "+s.String())
		return
	}
	plain(w, http.StatusOK, "ready: Healthy")
}

func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) {
	if h.src.Gatherer == nil {
		http.Error(w, "no metrics registry", http.StatusNotFound)
		return
	}
	promhttp.HandlerFor(h.src.Gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
}

func (h *Handler) json(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(h.Snapshot()) // an error means the client went away: no one to tell
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
