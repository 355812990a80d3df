// Command node is an example worker node: a non-exclusive role run by a
// startup.Runner, serving a tiny echo service (Echo, and Slow for drain
// demonstrations).
//
//	node -etcd-endpoints 127.0.0.1:2379 -role querynode -depends rootcoord -http-addr 127.0.0.1:9092
//
// (-etcd and -root are short for -etcd-endpoints and -root-path, as in
// cmctl.) With -http-addr it serves /healthz, /readyz (200 only while
// Healthy), /metrics and a live status page, /debug/clientmanager/ui
// (package debughttp).
//
// It waits at startup (bounded by -dependency-timeout) for its -depends
// roles to be online (-wait-depends, default true), and logs the roles it
// still waits for every 10 s.
//
// It prints "listening <addr>", one "state <to> from <from>" line per
// state change and "slow started" when a Slow call begins to stdout, logs
// to stderr, and exits with code 0 after a clean stop on SIGTERM or SIGINT
// (a second signal forces the stop).
package main

import (
	"os"

	"github.com/coordkit/clientmanager/examples/internal/app"
)

func main() {
	os.Exit(app.Main("node", os.Args[1:], os.Stdout, os.Stderr, app.NodeDefaults))
}
