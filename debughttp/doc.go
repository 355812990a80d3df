// Package debughttp serves one process's view of its cluster over HTTP, for
// people and for probes:
//
//	/healthz                 200 while the process serves HTTP (liveness)
//	/readyz                  200 only while the startup.Runner is Healthy
//	/metrics                 the Prometheus registry (promhttp)
//	/debug/clientmanager     JSON: the process, each role's nodes (state,
//	                         breaker, in-flight, latency, last errors), the
//	                         etcd revision and time of its watcher's last
//	                         sync, and the recent events
//	/debug/clientmanager/ui  a live status page: the same, as a table per
//	                         role with coloured states, refreshed every second
//
// A Handler reads what it shows from a client manager and a Runner through
// small interfaces (Manager, Runner); either may be absent. It records
// events — a node's state or breaker changing, the Runner's transitions —
// in a bounded ring, read by a goroutine it owns: Close stops it.
//
// Mount it on the component's own debug listener, never on the gRPC port:
//
//	h, err := debughttp.New(debughttp.Sources{Manager: mgr, Runner: runner, Gatherer: reg}, debughttp.DefaultConfig())
//	if err != nil { ... }
//	defer h.Close()
//	go http.Serve(lis, h)
//
// The library packages never import this one; binaries (cmd/, examples/)
// do.
package debughttp
