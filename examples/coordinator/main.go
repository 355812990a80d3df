// Command coordinator is an example coordinator: an exclusive role (one
// active process, the others stand by) run by a startup.Runner.
//
//	coordinator -etcd 127.0.0.1:2379 -role rootcoord -ttl 15s
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
	os.Exit(app.Main("coordinator", os.Args[1:], os.Stdout, os.Stderr,
		app.Defaults{Role: "rootcoord", Exclusive: true}))
}
