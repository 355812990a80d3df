// Package clientmanager keeps one gRPC client per live node of the roles a
// process depends on, and answers "who is online, and which client do I
// call?" without asking etcd.
//
// A Manager is built by New from an etcd client and a Config, whose fields
// document every default (DefaultConfig). AddDependency(role) watches the
// role's sessions (package session). Each node the watch reports gets a
// connector that dials it, at most MaxParallelDials at once over every
// role, and publishes it while it is available: listed by etcd, not
// Stopping, its connection READY, its health service serving, and the
// process at its address the one etcd names (its identity is checked on
// every connect, package identity). A node whose connection breaks is
// suspect, left out of picks at once; a node that leaves etcd has its
// calls in flight cancelled with ErrNodeGone. A new lease of the same
// process updates its Client in place.
//
// The online registry is an immutable snapshot behind an atomic pointer:
// IsOnline, IsRoleOnline, GetClients, ClientByID and GetClient are
// lock-free and do not allocate. WatchClients and WaitForRole follow it.
//
// Calls go through Invoke (a function given a *Client), InvokeNode (one
// node) or RoleConn (a grpc.ClientConnInterface for generated stubs).
// Every attempt goes to a node the role's balancer picks among those its
// circuit breaker and bulkhead admit; a call that provably did not reach
// the node's application — or any failure of an Idempotent call — is
// retried on another node, within the caller's deadline and the role's
// retry budget. Invoke's documentation gives the steps.
//
// Resilience lives in leaf packages configured through Config: breaker
// (one per node), bulkhead (one per node), balancer (one per role).
// Breakers never eject more than MaxEjectionPercent of a role's nodes
// while one of them is healthy; when none is, Invoke fails fast with
// ErrAllNodesUnhealthy, or with PanicMode routes to every node.
//
// Status and RoleHealth report each node and role for status pages and
// readiness. Clients is the interface call sites take, so that they can
// be tested with package mocks. Servers the manager calls must accept its
// keepalive pings (startup.KeepalivePolicy); package standalone serves
// services in process, for single-binary deployments.
//
// docs/design.md records the design, docs/operations.md the tuning.
package clientmanager
