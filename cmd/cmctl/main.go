// Command cmctl runs and inspects clusters of the client manager.
//
//	cmctl demo     [-nodes 3] [-speed 1] [-no-faults] [-http-addr host:port] [-etcd-endpoints host:port,...]
//	cmctl sessions -etcd-endpoints host:port[,...] [-root-path by-dev/meta] [-role R] [-wait 5s]
//	cmctl watch    -etcd-endpoints host:port[,...] -role R [-root-path by-dev/meta] [-wait 5s]
//	cmctl status   -etcd-endpoints host:port[,...] -role R [-root-path by-dev/meta] [-wait 5s]
//
// demo runs a whole cluster — embedded etcd, two coordinators (one a
// standby) and query nodes, each a child process — under a steady call
// load, and plays a timeline of faults, measuring how the cluster detects
// each and recovers. The others read a real etcd; -etcd is short for
// -etcd-endpoints and -root for -root-path, in cmctl and in the example
// binaries alike.
//
// Every command writes its results (and -h) to stdout and its errors to
// stderr, and exits with code 0 on success, 1 on failure or bad flags, and
// 2 when etcd does not answer within -wait (the message says which
// endpoint and why: connection refused, no such host, TLS,
// authentication). demo and watch stop cleanly on SIGINT or SIGTERM, and
// demo when its stdout is closed; a second signal kills the process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUnreachable = 2
)

// command is one subcommand: it parses args (without its own name) and
// runs until done or until ctx ends.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "run a cluster (etcd, coordinators, query nodes: child processes) under load through a timeline of faults", cmdDemo},
		{"sessions", "list the sessions registered in etcd, by role", cmdSessions},
		{"watch", "print the session events of a role until interrupted", cmdWatch},
		{"status", "connect to every node of a role and print the client manager's view of them", cmdStatus},
		{"help", "show this help", nil},
	}
}

func main() {
	if code, ok := runChild(os.Args[1:]); ok { // a component of the demo
		os.Exit(code)
	}
	// A write to a closed stdout returns an error instead of killing the
	// process, so that the demo still cleans up.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one gets the default behaviour.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) >= 2 && args[0] == "help" {
		args = []string{args[1], "-h"} // "cmctl help demo" is "cmctl demo -h"
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] || c.run == nil {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var unreachable *etcdUnreachableError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage):
			return exitFailure // the flag set already said why
		case errors.As(err, &unreachable):
			fmt.Fprintf(stderr, "cmctl %s: %v\n", c.name, err)
			return exitUnreachable
		}
		fmt.Fprintf(stderr, "cmctl %s: %v\n", c.name, err)
		return exitFailure
	}
	fmt.Fprintf(stderr, "cmctl: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitFailure
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "cmctl runs and inspects clusters of the client manager.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: cmctl <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "cmctl help <command>" for the flags of a command.`)
	fmt.Fprintln(w, "Exit codes: 0 success, 1 failure or bad flags, 2 etcd did not answer within -wait.")
}
