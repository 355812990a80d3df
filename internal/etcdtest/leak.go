package etcdtest

import "go.uber.org/goleak"

// LeakOptions lists goroutines that outlive a stopped embedded etcd or
// fault proxy by design (process-wide pools of their dependencies), for
// goleak.VerifyTestMain in packages that use this one.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		// A stopped member's peer HTTP connections (raft transport) end a
		// few seconds after Close, on their own idle timers. The module
		// itself runs no HTTP server or client, so these are etcd's.
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		// glog/klog-style flush daemons and the OpenCensus/otel workers
		// that etcd's dependencies start once per process.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("go.etcd.io/etcd/pkg/v3/schedule.(*fifo).run"),
		// toxiproxy can strand a pipe stub of a toxic removed while a
		// connection was open (its output is no longer read); it holds no
		// socket and belongs to the proxy, not to the code under test.
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
	}
}
