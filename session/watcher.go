package session

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Watcher follows the sessions of one role: it lists them at a revision,
// watches from the next one, and after any break of the watch lists again
// and emits what it missed. While etcd cannot be reached it keeps the last
// known set; LastSync says how old that knowledge is.
type Watcher struct {
	cli    *clientv3.Client
	cfg    Config
	wc     WatchConfig
	o      options
	log    *zap.Logger
	hub    *hub
	st     *state // owned by the loop goroutine
	m      watcherMetrics
	synced chan struct{}

	rev      atomic.Int64
	lastSync atomic.Int64 // unix nanoseconds; 0 before the first sync
	access   accessState  // etcd's refusal of the credentials (watcher_loop.go)

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// watcherMetrics are the role's children of the package's collectors.
type watcherMetrics struct {
	add, update, del prometheus.Counter
	malformed        prometheus.Counter
	filtered         prometheus.Counter
	known            prometheus.Gauge
	lastSync         prometheus.Gauge
	resyncs          *prometheus.CounterVec
}

// NewWatcher validates cfg and wc, starts watching wc.Role's sessions and
// returns at once; Synced is closed after the first successful list. Close
// stops it.
func NewWatcher(cli *clientv3.Client, cfg Config, wc WatchConfig, opts ...Option) (*Watcher, error) {
	if cli == nil {
		return nil, errors.New("session: NewWatcher: cli must not be nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := wc.Validate(); err != nil {
		return nil, err
	}
	filter, err := parseVersionRange(wc.VersionRange)
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	if o.rand == nil {
		o.rand = rand.Float64
	}
	role := wc.Role
	mt := o.metrics
	w := &Watcher{
		cli:    cli,
		cfg:    cfg,
		wc:     wc,
		o:      o,
		log:    o.logger.With(zap.String("role", role)),
		hub:    newHub(wc.SubscriberBuffer),
		st:     newState(cfg, role, filter),
		synced: make(chan struct{}),
		m: watcherMetrics{
			add:       mt.Events.WithLabelValues(role, EventAdd.String()),
			update:    mt.Events.WithLabelValues(role, EventUpdate.String()),
			del:       mt.Events.WithLabelValues(role, EventDel.String()),
			malformed: mt.MalformedSkip.WithLabelValues(role),
			filtered:  mt.FilteredSkip.WithLabelValues(role),
			known:     mt.KnownSessions.WithLabelValues(role),
			lastSync:  mt.LastSyncSecond.WithLabelValues(role),
			resyncs:   mt.Resyncs.MustCurryWith(prometheus.Labels{"role": role}),
		},
	}
	w.st.onMalformed = func(key string, rev int64, err error) {
		w.m.malformed.Inc()
		w.log.Warn("skipping malformed session value", zap.String("key", key), zap.Int64("revision", rev), zap.Error(err))
	}
	w.st.onFiltered = func(Session) { w.m.filtered.Inc() }
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(1)
	go w.run(ctx)
	return w, nil
}

// Subscribe returns a channel that first receives the current set as
// EventAdd (once synced), then every change, each with its revision. The
// channel is closed when ctx ends or the watcher is closed.
//
// A slow reader never delays the watcher or other subscribers: changes it
// has not taken yet coalesce to each process's latest state. A pending Add
// then Update arrives as one Add with the latest record; an Add then Del of
// a process this subscriber never saw arrives as nothing; a Del then Add
// of a process it saw arrives as one Update with the new record (compare
// LeaseID to tell a new incarnation). Events of one process keep their
// order, and revisions never decrease along the channel.
func (w *Watcher) Subscribe(ctx context.Context) <-chan Event { return w.hub.subscribe(ctx) }

// Synced is closed after the first successful list.
func (w *Watcher) Synced() <-chan struct{} { return w.synced }

// LastSync returns the time of the last successful list, watch response
// (progress notifications included) or revision check; zero before the
// first sync. Its age is how stale Sessions may be.
func (w *Watcher) LastSync() time.Time {
	ns := w.lastSync.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Sessions returns a copy of the visible set, sorted by ServerID.
func (w *Watcher) Sessions() []Session { return w.hub.sessions() }

// Revision returns the etcd revision the visible set is current at:
// whenever it returns R, Sessions reflects every change up to R.
func (w *Watcher) Revision() int64 { return w.rev.Load() }

// Close stops the watcher and every subscriber, whose channels are closed,
// and waits for their goroutines. It is safe to call more than once and
// always returns nil.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		w.cancel()
		w.wg.Wait()
		w.hub.close()
		w.log.Debug("session watcher closed")
	})
	return nil
}

// touch records a successful contact with etcd at revision rev. The
// changes up to rev must be emitted already, so that Revision never runs
// ahead of Sessions.
func (w *Watcher) touch(rev int64) {
	now := w.o.clock.Now()
	w.lastSync.Store(now.UnixNano())
	w.m.lastSync.Set(float64(now.UnixNano()) / 1e9)
	w.rev.Store(rev)
}

// emit publishes evs and counts them.
func (w *Watcher) emit(evs []Event) {
	if len(evs) == 0 {
		return
	}
	for _, ev := range evs {
		switch ev.Type {
		case EventAdd:
			w.m.add.Inc()
		case EventUpdate:
			w.m.update.Inc()
		case EventDel:
			w.m.del.Inc()
		}
	}
	w.hub.publish(evs)
	w.m.known.Set(float64(len(w.st.shown)))
}
