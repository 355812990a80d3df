// Package bench compares the client manager with what its users would
// pick instead: the closed-path cost of its circuit breaker with
// sony/gobreaker and failsafe-go, and its discovery and calls with etcd's
// naming resolver and grpc round_robin (TestPeerTable, make bench-peer).
// It is a module of its own so the root module does not depend on the
// peers it is measured against. See README.md.
package bench
