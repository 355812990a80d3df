// Package bulkhead limits the number of concurrent calls a process makes to
// one node, so that a slow node cannot absorb every goroutine of the caller
// (the bulkhead pattern of Hystrix and Polly). The client manager keeps one
// Bulkhead per node.
//
// A Bulkhead has MaxConcurrent slots. A caller takes one with Acquire and
// gives it back with Permit.Release. When every slot is taken, callers wait
// in a bounded first-in, first-out queue: at most MaxQueue of them, each for
// at most MaxWait and never past its context. A caller that finds the queue
// full fails at once with ErrBulkheadFull; one that waits MaxWait in vain
// fails with ErrBulkheadTimeout. Both are signs that the node is overloaded,
// and the caller is expected to try another replica.
//
// The uncontended path (a slot is free and nobody waits) is lock-free and
// does not allocate: two compare-and-swap operations to acquire and two to
// release. Waiting callers are handed slots in arrival order; a newcomer never
// overtakes a waiter.
//
// A Permit is tied to one acquisition by a generation number, so releasing it
// twice, or releasing a copy, is harmless: only the first Release frees the
// slot.
package bulkhead
