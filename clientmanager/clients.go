package clientmanager

import (
	"context"

	"google.golang.org/grpc"
)

//go:generate go run github.com/vektra/mockery/v2@v2.53.7 --name Clients --output ../mocks --outpkg mocks --filename clients.go --with-expecter --quiet

// Clients is what call sites need from the manager; *Manager implements it.
// Code that takes a Clients instead of a *Manager can be unit-tested with
// the generated mocks.Clients (package mocks) and clients made by
// NewClientForTest, with no etcd and no network.
type Clients interface {
	// GetClient returns the balancer's pick among the role's available
	// clients, or ErrServiceUnavailable.
	GetClient(role string) (*Client, error)
	// GetClients returns the role's available clients ordered by ServerID;
	// the slice is shared and read-only.
	GetClients(role string) []*Client
	// ClientByID returns the client of one node.
	ClientByID(nodeID int64) (*Client, error)
	// IsOnline reports whether the node is available.
	IsOnline(nodeID int64) bool
	// IsRoleOnline reports whether any node of the role is available.
	IsRoleOnline(role string) bool
	// Invoke runs call on a client of role, retrying on another node
	// when that is safe (see Manager.Invoke).
	Invoke(ctx context.Context, role string, call func(ctx context.Context, c *Client) error, opts ...CallOption) error
	// InvokeNode runs call on the client of one node.
	InvokeNode(ctx context.Context, nodeID int64, call func(ctx context.Context, c *Client) error, opts ...CallOption) error
	// RoleConn returns a connection to role with Invoke's semantics, for
	// generated stubs.
	RoleConn(role string) grpc.ClientConnInterface
}

var _ Clients = (*Manager)(nil)
