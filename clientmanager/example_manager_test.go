package clientmanager_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
)

// A coordinator depends on its query nodes: it follows their sessions,
// waits for one, and calls them through a generated stub on RoleConn (or
// a function of its own through Invoke), with failover to another replica.
func ExampleManager_Invoke() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second,
		DialOptions: session.EtcdDialOptions()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	m, err := clientmanager.New(cli, clientmanager.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if err := m.AddDependency("querynode"); err != nil { // watch the role, dial each node
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.WaitForRole(ctx, "querynode", 1); err != nil { // until one node is online
		log.Fatal(err)
	}

	// A generated stub works unchanged on the role: routing, breakers,
	// bulkheads, safe retries and fail-fast apply to each call.
	health := healthpb.NewHealthClient(m.RoleConn("querynode"))
	_, err = health.Check(ctx, &healthpb.HealthCheckRequest{}, clientmanager.Idempotent()) // may run twice
	if status.Code(err) == codes.Unavailable {
		log.Print("no query node is available: ", err) // fails fast, no etcd round trip
	}

	// Or a function of your own, given each attempt's node.
	err = m.Invoke(ctx, "querynode", func(ctx context.Context, c *clientmanager.Client) error {
		_, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}, clientmanager.Idempotent())
	if errors.Is(err, clientmanager.ErrServiceUnavailable) {
		log.Print("no query node is available: ", err)
	}
}

// Call sites can be unit-tested with a Client over any connection.
func ExampleNewClientForTest() {
	s := session.Session{ServerID: 7, ServerName: "querynode", Address: "10.0.0.7:21123", LeaseID: 42}
	c := clientmanager.NewClientForTest(s, nil)
	fmt.Println(c.NodeID(), c.Role(), c.Session().LeaseID)
	// Output: 7 querynode 42
}

// Errors of the manager carry a gRPC code, so they cross process
// boundaries as they are.
func ExampleNodeError() {
	err := error(&clientmanager.NodeError{NodeID: 3, Err: clientmanager.ErrNodeGone})
	fmt.Println(status.Code(err), err)
	fmt.Println(status.Code(clientmanager.ErrServiceUnavailable))
	// Output:
	// Unavailable clientmanager: node 3: clientmanager: node gone
	// Unavailable
}

// The per-node resilience of Invoke is tuned in Config, and its errors
// carry gRPC codes a caller can act on.
func ExampleConfig_resilience() {
	cfg := clientmanager.DefaultConfig()
	cfg.Breaker.ConsecutiveFailures = 3 // open a node's breaker sooner
	cfg.Bulkhead.MaxConcurrent = 16     // at most 16 calls at once per node
	cfg.MaxEjectionPercent = 34         // breakers take out at most a third of a role
	cfg.RetryBudget.Ratio = 0.1         // retries: 10 % of calls (plus the floor)
	cfg.PoolSize = 2                    // two connections per node
	fmt.Println(cfg.Validate())

	cfg.MaxEjectionPercent = 150
	fmt.Println(cfg.Validate())

	fmt.Println(status.Code(clientmanager.ErrAllNodesUnhealthy), status.Code(clientmanager.ErrOverloaded))
	// Output:
	// <nil>
	// clientmanager: invalid config: MaxEjectionPercent (150) must be in [0, 100]
	// Unavailable ResourceExhausted
}

// A readiness probe can report what the manager knows of a dependency.
func ExampleManager_RoleHealth() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	m, err := clientmanager.New(cli, clientmanager.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if err := m.AddDependency("datanode"); err != nil {
		log.Fatal(err)
	}

	v := m.RoleHealth("datanode")
	if v.Health != clientmanager.Healthy {
		log.Printf("datanode is %s: %s", v.Health, strings.Join(v.Reasons, "; "))
	}
	for _, s := range m.Status() {
		log.Printf("node %d %s breaker=%s queued=%d latency=%s", s.NodeID, s.State, s.Breaker, s.Queued, s.LatencyEWMA)
	}
}
