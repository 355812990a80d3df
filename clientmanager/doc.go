// Package clientmanager keeps one gRPC client per live node of the roles a
// process depends on, and answers "who is online, and which client do I
// call?" without asking etcd.
//
// # Discovery and connectors
//
// AddDependency(role) starts a session.Watcher for the role and one consumer
// goroutine. Each node the watcher adds gets its own connector goroutine,
// which dials the node: DialAttempts attempts (default 3), each bounded by
// DialTimeout (default 30 s), with full-jitter DialBackoff between them. At
// most MaxParallelDials attempts run at once (default 64); the slot is held
// only during an attempt, so a re-list of a thousand nodes does not
// stampede and a black-holed node never delays the others. A node whose
// attempts are spent is unreachable: it is offline for call sites and is
// re-probed (one attempt) every ReprobeInterval while its session exists,
// and dialed again at once when its session changes.
//
// A Del from etcd stops the node's connector, removes its client from the
// registry and cancels every call in flight to the node, which returns
// ErrNodeGone (codes.Unavailable) at once; the connection is closed when
// those calls have returned, or after DrainTimeout. A new incarnation (the
// same ServerID with a new LeaseID or Address) replaces the old client. A
// session marked Stopping stays a member but is not picked for new calls.
//
// # Availability
//
// A node is available when etcd lists it, it is not Stopping, and its
// connection is READY. The connector watches the connection's state: any
// other state makes the node suspect — excluded from picks at once — and it
// is available again as soon as the connection is READY again. A killed
// process closes its TCP connection, so its node is suspect within
// milliseconds, long before its lease expires.
//
// The online registry is an immutable snapshot behind an atomic pointer,
// rebuilt on each change: IsOnline, IsRoleOnline, GetClients, ClientByID and
// GetClient are lock-free and do not allocate.
//
// # The gRPC connection
//
// The default Dialer (NewGRPCDialer with the options built from Config)
// uses grpc.NewClient with the passthrough resolver, calls Connect and
// waits for READY within the attempt. Its connections:
//
//   - reconnect with backoff base 100 ms, multiplier 1.6, jitter 0.2, at
//     most ConnectBackoffMax (default 3 s), so a node back on the same
//     address is usable within seconds rather than grpc's default 120 s;
//   - send keepalive pings every KeepaliveTime (10 s) even without calls
//     (PermitWithoutStream) and drop a connection whose ping is not answered
//     within KeepaliveTimeout (20 s). Servers must allow it with
//     keepalive.EnforcementPolicy{MinTime: 5 * time.Second,
//     PermitWithoutStream: true}, or they close the connection with
//     "too_many_pings";
//   - have grpc's own retries disabled (grpc.WithDisableRetry): retries
//     live in one layer, Invoke;
//   - when SuspectOnHealth is set (the default), watch the server's standard
//     health service (grpc.health.v1, service name ""): a server that says
//     NOT_SERVING makes its node suspect. A server without the health
//     service counts as serving.
//
// # Calls
//
// Every call made through Client.Conn carries the target's ServerID and
// LeaseID in its metadata (see OutgoingIdentity), so a process that reused
// the address of a dead one rejects it; the manager treats that rejection
// as "the node is gone".
//
// Invoke picks an available node of a role with the role's balancer and
// fails fast with ErrServiceUnavailable when there is none. It makes up to
// CallAttempts attempts, each bounded by CallTimeout and never past the
// caller's deadline. A retryable failure — codes.Unavailable, codes.Aborted,
// the attempt's own deadline, ErrNodeGone, an identity mismatch — is retried
// at once on another node when there is one, and on the same node only
// after CallBackoff. Other codes, codes.ResourceExhausted included (a
// loaded server should not get more load), are returned at once, and so is
// the caller's own cancellation or deadline.
package clientmanager
