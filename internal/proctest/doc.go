// Package proctest runs real processes for tests: it builds binaries of
// the module once per test binary (Builds), starts them as child
// processes whose stdout lines are kept with the time they were read
// (Proc), and stops (SIGTERM), kills (SIGKILL), freezes (SIGSTOP) and
// thaws (SIGCONT) them. Every process is killed by t.Cleanup, and its
// stderr is logged when the test failed.
//
// FreePort hands out loopback ports below the kernel's ephemeral range,
// so that a process restarted on its port finds it free.
package proctest
