// Package balancer picks which replica of a role serves the next call.
//
// A Balancer is given the candidate node IDs (the online replicas, in a
// stable order such as ascending ServerID) and a filter of IDs to skip (the
// replicas this call already tried, or whose circuit breaker is open), and
// returns one ID. It also counts the calls in flight on every node: the
// caller brackets each call with Start and Call.Done.
//
// Three policies are provided:
//
//   - RoundRobin cycles through the eligible candidates in order, so each
//     gets an equal share of picks regardless of speed.
//   - PowerOfTwo (the default) draws two distinct eligible candidates at
//     random and takes the one with fewer calls in flight. It adapts to slow
//     nodes without any tuning and without herding.
//   - LookAside scores each candidate with the C3 formula Milvus uses and
//     takes the lowest score. It learns from the latencies and errors this
//     process sees. Failed calls count as slow calls, so a node that fails
//     fast is not preferred; new nodes are not trusted until a blackout
//     has passed.
//
// Pick, Start and Call.Done are safe for concurrent use and take no locks:
// per-node state lives in a copy-on-write map behind an atomic pointer, and
// its counters are atomic. Only the first Start on a node, and Remove, take
// a mutex. They do not allocate once a node has been seen, with one
// exception: PowerOfTwo and LookAside keep the resolution of the last
// candidates slice they were given twice in a row to its nodes, so that a
// caller passing the same slice on every Pick (the manager passes the
// role's immutable list of IDs) has its nodes read by index instead of
// looked up by ID; the Pick that builds it allocates, once per new slice
// and once after each first Start on a node or Remove. A caller that
// passes a new slice on every Pick never allocates.
//
// Unseeded, the random draws of PowerOfTwo and LookAside come from
// math/rand/v2's global generator, which the runtime keeps per thread, so
// concurrent Picks share no written memory; WithSeed makes them come from a
// shared seeded generator instead, reproducible in a serial sequence of
// Picks.
//
// Every policy implements IndexPicker, whose PickIndex returns where in
// candidates its pick is, and RoundRobin implements Peeker.
package balancer
