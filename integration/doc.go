// Package integration holds the tests that show the library doing its job
// under real faults, with every call outcome recorded and checked.
//
// Untagged (make test): nodes run by startup.Runner on real gRPC servers
// in the test process, a client manager calling them under load, and an
// embedded etcd (one member or a 3-member cluster) that is stopped,
// restarted or loses its leader.
//
// Build tag integration (make integration): node and coordinator
// processes built from examples/, each reaching etcd through a fault
// proxy of its own, stopped (SIGTERM), killed (SIGKILL), frozen
// (SIGSTOP), cut off from etcd or from the manager, and bad values
// written into etcd under them; docs/integration.md has the scenarios and
// their figures.
//
// It has no code of its own outside its tests; nothing imports it.
package integration
