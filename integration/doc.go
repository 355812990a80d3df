// Package integration holds the tests that show the library doing its job
// under real faults: nodes run by startup.Runner on real gRPC servers, a
// client manager calling them under load, and an embedded etcd (one member
// or a 3-member cluster) that is stopped, restarted or loses its leader
// while every call outcome is recorded and checked.
//
// It has no code of its own outside its tests; nothing imports it.
package integration
