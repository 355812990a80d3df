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
// most MaxParallelDials connections are opened at once (default 64); an
// attempt gives its slot back as soon as its connection is open (the TCP
// connect, with the default dialer), and after DialSlotTimeout at most,
// then waits for READY without it, so a re-list of a thousand nodes does
// not stampede and black-holed nodes (that accept and never speak) never
// delay the others, however many. A node whose
// attempts are spent is unreachable: it is offline for call sites and is
// re-probed (one attempt) every ReprobeInterval while its session exists,
// and dialed again at once when its session changes.
//
// A Del from etcd stops the node's connector, removes its client from the
// registry and cancels every call in flight to the node, which returns
// ErrNodeGone (codes.Unavailable) at once; the connection is closed when
// those calls have returned, or after DrainTimeout. A process is one start,
// ServerID and Incarnation: when it re-registers under a new lease (after
// an etcd outage longer than its TTL) its client is updated in place, and
// nothing is redialed or cancelled. A new process under the same ServerID —
// a new Incarnation, a new Address, or for a record without Incarnation
// (written by Milvus) a new LeaseID — replaces the old client. A session
// marked Stopping stays a member but is not picked for new calls; the
// connection going away after that, and the removal, are logged at Info.
//
// # Availability
//
// A node is available when etcd lists it, it is not Stopping, its
// connection is READY, and the server there did not reject its identity:
// on every (re)connect, before the node is published, the connector makes
// a health Check carrying the identity, so a connection that reconnected
// to another process serving at the address is not published (the node is
// gone until etcd removes or replaces it). The connector watches the
// connection's state: a connection that breaks (CONNECTING after READY,
// TRANSIENT_FAILURE) makes the node suspect — excluded from picks at once —
// and it is available again as soon as the connection is READY again. A
// killed process closes its TCP connection, so its node is suspect within
// milliseconds, long before its lease expires. IDLE is no failure: the
// connection is told to reconnect and the node stays available.
//
// Connected is not serving. With SuspectOnHealth (the default) the
// connector also watches the server's standard health service
// (grpc.health.v1 Watch, service ""): a READY connection whose server says
// NOT_SERVING — an exclusive role's standby, a component still starting —
// is kept, its node is suspect, and it is available the moment the server
// says SERVING; it is neither redialed nor re-probed, and its dial held a
// dial slot only until the connection was READY. A server without the
// health service counts as serving.
//
// The online registry is an immutable snapshot behind an atomic pointer;
// a change merges only the changed nodes into their role's view, and
// changes queued meanwhile are published together: IsOnline, IsRoleOnline, GetClients, ClientByID and
// GetClient are lock-free and do not allocate.
//
// # The gRPC connection
//
// The default Dialer (NewGRPCDialer with the options built from Config)
// uses grpc.NewClient with the passthrough resolver, calls Connect and
// waits for READY (connected, whatever the health) within the attempt; a
// failed attempt names grpc's last connection error. Its connections:
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
//   - never go IDLE for want of calls (grpc.WithIdleTimeout(0)), and
//     reconnect on their own (round_robin over the single address).
//
// # Calls
//
// Every call made through Client.Conn carries the target's ServerID,
// Incarnation and LeaseID in its metadata (see OutgoingIdentity), so a
// process that reused the address of a dead one rejects it (CheckIdentity)
// while the process itself accepts calls addressed with a lease it held
// before re-registering; the manager treats a rejection as "the node is
// gone".
//
// Invoke picks an available node of a role with the role's balancer and
// fails fast with ErrServiceUnavailable when there is none. It makes up to
// CallAttempts attempts, never past the caller's deadline. Retries are
// safe by default (gRFC A6): only a call that provably did not reach the
// node's application is retried, unless it is marked Idempotent; the
// rules, and how each attempt's time is derived from the caller's so that
// a hung node leaves routing, are on Invoke. RoleConn gives generated
// stubs the same semantics.
//
// # Resilience
//
// Every node has a circuit breaker (Config.Breaker, package breaker) and a
// bulkhead (Config.Bulkhead, package bulkhead); every role has its balancer
// (Config.Balancer) and a retry budget (Config.RetryBudget). Retries live
// in Invoke alone, and the breaker sits inside the retry loop: an open
// breaker means "try another node", never "wait". Each attempt goes
// through these steps:
//
//  1. Route. While every breaker of the role is closed, all available
//     nodes are candidates. Otherwise each candidate's breaker state is
//     read — which turns an open breaker half-open as soon as its break
//     is over — and a node whose breaker is open is ejected, while a
//     half-open one only takes calls its breaker admits as probes.
//  2. Pick. The balancer picks among the candidates, skipping the nodes
//     this call tried already, so a retry goes to another node; only when
//     every candidate was tried does a retry go to one of them again.
//  3. Admit. The node's breaker is asked first (Allow): a refusal — open,
//     or half-open with every probe permit taken — skips the node for
//     this call and another is picked; it is not an attempt and costs
//     nothing. Then the node's bulkhead: every candidate is first tried
//     without waiting; only when every one is busy does the call queue,
//     once, at the busy node with the shortest queue, at most the
//     bulkhead's MaxWait and never past the caller's ctx. A full queue or a
//     wait that ran out is not a failure for the node's breaker. When no node admits the call, Invoke
//     returns ErrOverloaded (codes.ResourceExhausted) if a bulkhead turned
//     it away, else ErrAllNodesUnhealthy — or the last attempt's error if
//     there was one.
//  4. Call, within the attempt's time (see Invoke) and the caller's ctx.
//  5. Record. The result goes to the balancer (in-flight count, latency)
//     and to the breaker, classified with the breaker's classifier
//     against the caller's ctx: the caller's cancellation or deadline
//     counts for nothing, no answer within the attempt's share of the
//     caller's time is a failure, and codes are classified as
//     breaker.ClassifyCode says. A call cut short because its node left,
//     an error the function returned without a gRPC status and a
//     ResourceExhausted raised by the client itself count for nothing. Status shows the
//     node's latency average and last failure.
//  6. Retry, when the failure may be retried (gRFC A6 unless the call is
//     Idempotent, see Invoke) and CallAttempts allows, if
//     the role's retry budget has room: within any RetryBudget.Window,
//     retries may number at most Ratio × calls plus MinPerSecond × Window
//     seconds (by default 20 % of calls plus 100). A call whose retry
//     does not fit returns its last error. A server may push back with the
//     trailer grpc-retry-pushback-ms (see PushbackTrailer and gRFC A6):
//     a value ≥ 0 is waited before the retry, whichever node it goes to
//     (and the call fails with its last error if the caller's deadline
//     comes first); a negative or malformed value forbids the retry.
//     Unary calls made through Client.Conn under the attempt's ctx capture
//     their trailers for this; other connections do not.
//
// # Ejection cap and unhealthy roles
//
// Breakers never eject more than MaxEjectionPercent (default 50) of a
// role's n available nodes, and never all of them, as long as one node's
// breaker is closed: at most ⌊n × MaxEjectionPercent / 100⌋, capped at
// n−1, nodes are left out; a node whose breaker is open or half-open
// counts as ejected. Past the cap, the nodes whose breakers opened
// earliest are routed to anyway, as if their breakers were closed (their
// results are not recorded; their breakers still move to half-open and
// close through probes). So with 4 nodes, 3 of them open, 2 are ejected
// and the earliest opened one takes calls again beside the healthy one.
// The cap guards the healthy remainder from the whole load when breakers
// trip on a shared cause, such as the caller's own network.
//
// The cap applies only while some breaker is closed. When no node of the
// role has a closed breaker, there is no healthy remainder to protect: the
// role is all unhealthy. Half-open nodes still take their probes, and
// when none admits one, Invoke fails at once — without a call, under a
// millisecond — with ErrAllNodesUnhealthy (codes.Unavailable). With
// PanicMode set, it calls every available node instead, regardless of its
// breaker (Envoy's panic routing). InvokeNode has no cap and no panic: a
// refusing breaker fails it with ErrCircuitOpen.
//
// The manager refreshes every breaker each BreakerRefreshInterval
// (default 250 ms, on the manager's clock) from a goroutine started with
// the first dependency and stopped by Close, so that Status and RoleHealth
// stay current for nodes that get no call. Breaker listeners update the
// metrics and the registry; the breaker logs each change once, with the
// node's role and node_id.
//
// # Connection pool
//
// With PoolSize > 1 (default 1) a node's calls go round robin over
// PoolSize connections. The first is the one the connector dials and
// watches, and it alone decides whether the node is available. The others
// are dialed in the background, by a goroutine of the node's connector,
// when a call first falls on their turn; until one is READY its turns go
// to the first connection. A pooled connection other than the first that
// carried no call for IdleTimeout (default 10 min; checked every
// IdleTimeout/2, so it closes between IdleTimeout and 1.5 × IdleTimeout
// after its last call) is closed, and dialed again on its next turn. When
// the node leaves, every connection of it is closed once its calls have
// returned, after DrainTimeout at most.
//
// # Health
//
// Status reports, per node, its state, breaker state, calls in flight,
// bulkhead queue, latency average, consecutive failures and last failure.
// RoleHealth judges a role Unhealthy when no node is available or a
// node's breaker has not been closed for longer than UnhealthyAfter
// (default 30 s), Degraded when a breaker is open or half-open or a
// bulkhead queue is over 80 % full, Healthy otherwise, and says why.
//
// GetClient and GetClients do not consult the breakers: they answer from
// the registry alone. Use Invoke for calls that should be routed around
// failing nodes.
//
// # Defaults
//
// Breaker: breaker.DefaultConfig() (5 failures in a row, or 50 % of at
// least 20 calls in 10 s, open it; 5 s break doubling to 60 s with 20 %
// jitter; 3 probes; 10 s probe lease). Bulkhead: bulkhead.DefaultConfig()
// (64 concurrent, 128 queued, 1 s wait). MaxEjectionPercent 50. PanicMode
// false. RetryBudget 0.2 × calls + 10 per second over 10 s. PoolSize 1.
// IdleTimeout 10 min. UnhealthyAfter 30 s. BreakerRefreshInterval 250 ms.
package clientmanager
