// Package breaker is the per-node circuit breaker of the client manager.
//
// A Breaker is closed, open or half-open. While closed it admits every call
// and opens when ConsecutiveFailures failures arrive in a row, or when the
// share of failures among the calls recorded in the sliding Window reaches
// FailureRatio once at least MinimumThroughput calls fell in it. Thresholds
// are evaluated when a failure is recorded, so a success never opens it.
//
// While open it refuses calls with ErrOpen for a break duration that starts
// at BreakDuration, doubles (with downward jitter) on each consecutive
// opening up to MaxBreakDuration, and starts over once the breaker stayed
// closed for a whole Window. BreakDurationFunc replaces that schedule.
//
// When the break is over the breaker is half-open: it admits HalfOpenProbes
// trial calls (others get ErrTooManyProbes). If all of them succeed it
// closes; one failure opens it again. A probe that does not report within
// ProbeLease counts as failed, so a hung call cannot wedge the breaker.
//
// # Tokens
//
// Allow returns a Token that the caller hands back to Record (or Done) with
// the call's Outcome. Every transition starts a new generation, and a result
// whose token belongs to an earlier generation is ignored: a slow call that
// was admitted while closed cannot close, open or free a probe permit of a
// later period. Outcome Excluded (the caller gave up) decides nothing and
// only returns a half-open permit. Classify maps a call's error to an
// Outcome by gRPC status code.
//
// # Time
//
// The breaker starts no goroutines. Time-based transitions happen lazily,
// in Allow, State, Refresh and Snapshot; the router calls Refresh for every
// node on its tick so that a node that gets no traffic is still probed.
//
// The closed path is lock-free and allocation-free: Allow is one atomic
// load, and a successful Record adds to the current window bucket. To keep
// the clock off that path the current bucket is chosen by a coarse clock
// that is read every 32 successes, on every failure and on every Refresh
// and Snapshot. Successes counted since the last read are dated by the next
// one: when it finds that the window moved on, they are carried into the
// new current bucket instead of expiring with the old one, so the first
// calls after an idle period count. A success may therefore be counted in
// a bucket up to that many calls (or one router tick) younger than its
// true one.
//
// # Listeners
//
// State-change listeners are called outside the breaker's lock, once per
// transition and in transition order; a listener may call any method of
// the breaker.
package breaker
