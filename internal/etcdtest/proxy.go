package etcdtest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/coordkit/clientmanager/internal/embedetcd"
)

// Proxy is an in-process TCP fault proxy (toxiproxy) in front of one
// upstream address.
type Proxy struct {
	mu      sync.Mutex
	proxy   *toxiproxy.Proxy
	toxics  []string
	stopped bool
}

// NewProxy listens on a free loopback port and forwards to upstream (host:port);
// it is closed by t.Cleanup.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	// A port below the ephemeral range, so Restore after Down finds it free.
	ports, err := embedetcd.FreePorts(1)
	if err != nil {
		t.Fatalf("etcdtest: proxy to %s: %v", upstream, err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(ports[0])
	p := toxiproxy.NewProxy(srv, "etcdtest-"+strings.ReplaceAll(upstream, ":", "-"), listen, upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("etcdtest: start proxy to %s: %v", upstream, err)
	}
	px := &Proxy{proxy: p}
	t.Cleanup(func() {
		px.mu.Lock()
		defer px.mu.Unlock()
		px.removeToxics()
		if !px.stopped {
			px.proxy.Stop()
			px.stopped = true
		}
	})
	return px
}

// Addr returns the address clients dial, 127.0.0.1:port.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proxy.Listen
}

// Cut turns the proxy into a black hole: connections stay open and new ones
// are accepted, but no byte passes in either direction.
func (p *Proxy) Cut(t testing.TB) {
	t.Helper()
	p.add(t, "timeout", map[string]any{"timeout": 0})
}

// Reset resets every connection (TCP RST) as soon as data flows.
func (p *Proxy) Reset(t testing.TB) {
	t.Helper()
	p.add(t, "reset_peer", map[string]any{"timeout": 0})
}

// Latency delays data by d in each direction.
func (p *Proxy) Latency(t testing.TB, d time.Duration) {
	t.Helper()
	p.add(t, "latency", map[string]any{"latency": d.Milliseconds()})
}

// Down stops listening and closes every connection: dials are refused.
func (p *Proxy) Down(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.proxy.Stop()
		p.stopped = true
	}
}

// Restore removes every fault and listens again (on the same port) if Down.
func (p *Proxy) Restore(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeToxics()
	if p.stopped {
		if err := p.proxy.Start(); err != nil {
			t.Fatalf("etcdtest: restart proxy: %v", err)
		}
		p.stopped = false
	}
}

func (p *Proxy) add(t testing.TB, typ string, attrs map[string]any) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, stream := range []string{"upstream", "downstream"} {
		name := fmt.Sprintf("%s-%s-%d", typ, stream, len(p.toxics))
		body := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`,
			name, typ, stream, jsonAttrs(attrs))
		if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			t.Fatalf("etcdtest: add %s toxic: %v", typ, err)
		}
		p.toxics = append(p.toxics, name)
	}
}

func (p *Proxy) removeToxics() {
	for _, name := range p.toxics {
		_ = p.proxy.Toxics.RemoveToxic(context.Background(), name)
	}
	p.toxics = nil
}

func jsonAttrs(attrs map[string]any) string {
	parts := make([]string, 0, len(attrs))
	for k, v := range attrs {
		parts = append(parts, fmt.Sprintf("%q:%v", k, v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
