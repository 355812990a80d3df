// Package bench compares the closed-path cost of the client manager's
// circuit breaker with sony/gobreaker and failsafe-go. It is a module of
// its own so the root module does not depend on the peers it is measured
// against. See README.md.
package bench
