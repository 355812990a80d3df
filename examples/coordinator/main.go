// Command coordinator is an example coordinator: an exclusive role (one
// active process, the others stand by) run by a startup.Runner, that calls
// its worker nodes.
//
//	coordinator -etcd-endpoints 127.0.0.1:2379 -role rootcoord -ttl 15s -http-addr 127.0.0.1:9091
//
// (-etcd and -root are short for -etcd-endpoints and -root-path, as in
// cmctl.) With -http-addr it serves /healthz, /readyz, /metrics and a
// live status page, /debug/clientmanager/ui (package debughttp).
//
// While active (Healthy) it calls the Echo service of a -call role
// (default querynode) once per -call-interval (default 1 s) through the
// client manager's Invoke, and logs the node that answered or the failure.
// It does not wait for its nodes at startup: its -depends roles are
// optional by default (-wait-depends=false), since the nodes wait for the
// coordinator (node -depends rootcoord); two processes that wait for each
// other would both wait the whole -dependency-timeout.
//
// It prints "listening <addr>" and one "state <to> from <from>" line per
// state change to stdout, logs to stderr, and exits with code 0 after a
// clean stop on SIGTERM or SIGINT (a second signal forces the stop).
package main

import (
	"os"

	"github.com/coordkit/clientmanager/examples/internal/app"
)

func main() {
	os.Exit(app.Main("coordinator", os.Args[1:], os.Stdout, os.Stderr, app.CoordinatorDefaults))
}
