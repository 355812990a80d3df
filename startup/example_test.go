package startup_test

import (
	"context"
	"fmt"
	"net"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

// queryNode is a component: Init prepares it, Start makes it serve, Stop
// releases it.
type queryNode struct{}

func (queryNode) Init(context.Context) error  { return nil }
func (queryNode) Start(context.Context) error { return nil }
func (queryNode) Stop(context.Context) error  { return nil }

// A worker node that depends on the root coordinator: Run serves the
// health service at once, waits (bounded) for a rootcoord to be online,
// registers once started, and stops gracefully when ctx ends.
func Example() {
	run := func(ctx context.Context, cli *clientv3.Client) error {
		cfg := startup.DefaultConfig()
		cfg.Session = session.Session{ServerName: "querynode", Version: "2.4.1"}
		cfg.Dependencies = []startup.Dependency{{Role: "rootcoord"}}

		mc := clientmanager.DefaultConfig()
		mc.SessionConfig = cfg.SessionConfig
		mgr, err := clientmanager.New(cli, mc)
		if err != nil {
			return err
		}
		defer mgr.Close()

		r, err := startup.New(cli, mgr, cfg, queryNode{})
		if err != nil {
			return err
		}
		defer r.Close()
		srv := grpc.NewServer(r.ServerOptions()...)
		// Register the component's own services on srv here.
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		return r.Run(ctx, srv, lis) // returns nil after a clean stop
	}
	_ = run
}

// Milvus components answer GetComponentStates with a commonpb.StateCode.
func ExampleToMilvusStateCode() {
	for _, s := range []startup.State{startup.StateStarting, startup.StateHealthy, startup.StateStandBy,
		startup.StateAbnormal, startup.StateStopping, startup.StateStopped} {
		fmt.Println(s, startup.ToMilvusStateCode(s))
	}
	// Output:
	// Starting 0
	// Healthy 1
	// StandBy 3
	// Abnormal 2
	// Stopping 4
	// Stopped 2
}

// A call refused because the process is not Healthy carries its state in
// an errdetails.ErrorInfo; this is what such a status looks like.
func ExampleStateFromError() {
	st, _ := status.New(codes.Unavailable, "startup: not serving in state StandBy").WithDetails(
		&errdetails.ErrorInfo{
			Reason:   startup.ReasonNotServing,
			Domain:   startup.ErrorDomain,
			Metadata: map[string]string{"state": "StandBy"},
		})
	if s, ok := startup.StateFromError(st.Err()); ok {
		fmt.Println("refused in state", s)
	}
	_, ok := startup.StateFromError(status.Error(codes.Unavailable, "connection refused"))
	fmt.Println(ok)
	// Output:
	// refused in state StandBy
	// false
}
