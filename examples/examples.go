// Package examples lends the example binaries' bodies to other programs:
// cmctl demo runs them as child processes of its own binary, so that the
// demo needs neither a build step nor the module's source at run time.
// The binaries themselves are examples/coordinator and examples/node.
package examples

import (
	"context"
	"io"

	"google.golang.org/grpc"

	"github.com/coordkit/clientmanager/examples/internal/app"
	"github.com/coordkit/clientmanager/examples/internal/echo"
)

// Flag names that the example binaries share with cmctl.
const (
	FlagEtcdEndpoints = app.FlagEtcdEndpoints
	FlagRootPath      = app.FlagRootPath
	FlagTTL           = app.FlagTTL
	FlagHTTPAddr      = app.FlagHTTPAddr
)

// Coordinator runs examples/coordinator with args (without the program
// name) and returns its exit code.
func Coordinator(args []string, stdout, stderr io.Writer) int {
	return app.Main("coordinator", args, stdout, stderr, app.CoordinatorDefaults)
}

// Node runs examples/node with args (without the program name) and
// returns its exit code.
func Node(args []string, stdout, stderr io.Writer) int {
	return app.Main("node", args, stdout, stderr, app.NodeDefaults)
}

// Echo calls the Echo method of the example binaries' service on cc and
// returns the answer, which is msg.
func Echo(ctx context.Context, cc grpc.ClientConnInterface, msg string) (string, error) {
	return echo.Echo(ctx, cc, msg)
}
