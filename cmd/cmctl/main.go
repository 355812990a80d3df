// Command cmctl runs and inspects clusters of the client manager.
//
//	cmctl demo     [-nodes 3] [-duration 0] [-ttl 2s]   a whole cluster in one process, on embedded etcd
//	cmctl sessions -etcd host:port[,...] [-root by-dev/meta] [-role R]
//	cmctl watch    -etcd host:port[,...] -role R [-root by-dev/meta]
//	cmctl status   -etcd host:port[,...] -role R [-root by-dev/meta] [-wait 5s]
//
// Every command writes its results to stdout and its errors to stderr, and
// exits with code 0 on success and 1 on failure. demo and watch stop
// cleanly on SIGINT or SIGTERM; a second signal kills the process.
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

// command is one subcommand: it parses args (without its own name) and
// runs until done or until ctx ends.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "run a coordinator and query nodes on embedded etcd and show discovery, calls and graceful stops", cmdDemo},
		{"sessions", "list the sessions registered in etcd, by role", cmdSessions},
		{"watch", "print the session events of a role until interrupted", cmdWatch},
		{"status", "connect to every node of a role and print the client manager's view of them", cmdStatus},
		{"help", "show this help", nil},
	}
}

func main() {
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
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] || c.run == nil {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 1 // the flag set already said why
		}
		fmt.Fprintf(stderr, "cmctl %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "cmctl: unknown command %q\n\n", args[0])
	usage(stderr)
	return 1
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
}
