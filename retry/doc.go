// Package retry holds the backoff policy and the retry loop used by every
// other package of the module, so retries live in one layer.
//
// A Policy is plain data: Backoff(n) is a pure function of the attempt
// number and a random value (full jitter), and Do runs the first attempt at
// once, then waits on a timer and the context in one select. Do never sleeps
// past the context's deadline: when the next wait would cross it, Do returns
// at once with the last error.
package retry
