// Package etcdtest runs embedded etcd (internal/embedetcd) for the
// module's tests: a single member or a cluster, each in t.TempDir() on free
// loopback ports, and an in-process TCP fault proxy (toxiproxy) to put
// between a client and a member. Everything is stopped by t.Cleanup.
package etcdtest
