// Package retry holds the backoff shape and the retry loop used by every
// other package of the module, so retries live in one layer.
//
// A Backoff is plain data: Delay(n, r) is a pure function of the attempt
// number and a random value (full jitter by default). Loops that only need a
// wait between tries (redialling, re-registering, re-listing) take a Backoff.
// A Policy adds to it how many attempts Do makes and how long each may take.
//
// Do runs the first attempt at once, then waits on a timer and the context
// in one select. Do never sleeps past the context's deadline: when the next
// wait would cross it, Do returns at once with the last error.
package retry
