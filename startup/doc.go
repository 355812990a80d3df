// Package startup runs a component through one lifecycle, the same for
// every coordinator and worker node: initialise, wait for dependencies,
// start, register in etcd, serve; and on the way down, stop gracefully.
//
// A Runner owns the lifecycle as an explicit state machine:
//
//	Initializing → WaitingDependencies → Starting → Registering → Healthy
//	                                                      └─────→ StandBy → Healthy   (exclusive role's standby)
//	Healthy/StandBy → Abnormal (session lost) → Healthy/StandBy (registered again)
//	any running state → Stopping → Stopped
//
// Transitions outside the table are rejected with an *IllegalTransitionError.
// Every change is observable: State, WaitForState, Subscribe (the whole
// history, in order, never blocking the Runner) and one structured log line.
//
// Run registers the standard gRPC health service on the server and serves at
// once, so probes answer from the first second; the health status is SERVING
// only in Healthy, for the overall service "" and for the role's name. The
// component registers its session only after Start, once it can serve, so
// nobody discovers a process that cannot answer yet.
//
// The server options of ServerOptions gate every call by state (only Healthy
// serves; the health service and Config.GateAllowlist are always served) and
// check the caller's view of this process's identity: a call addressed to
// another ServerID or LeaseID (an earlier incarnation at the same address) is
// rejected, see identity.Check. A rejected call gets
// codes.Unavailable with the state in an error detail; StateFromError reads
// it back.
//
// When Run's context ends the Runner stops: Stopping=true is written to etcd
// while it still serves, so watchers stop picking the process; it keeps
// serving for a short lame-duck wait (Config.LameDuck, skipped when no one
// has been calling); then health turns NOT_SERVING and new calls are
// rejected; the component's Stop runs while the calls in flight drain, since
// a call (a stream, a long poll) may end only when the component stops; the
// gRPC server stops gracefully and the lease is revoked. Config.StopTimeout
// bounds the stop from the rejection on; ForceStop cuts any wait short.
package startup
