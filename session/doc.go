// Package session registers a process in etcd and discovers the others.
//
// A process registers one Session: a leased key under
// <RootPath>/session/<role>-<ServerID> (an exclusive role's active process
// also holds <RootPath>/session/<role>), whose value is the JSON record that
// Milvus uses, so existing tools can read it. The lease is kept alive; when
// it is lost the Registration says so at once and, by default, registers
// again with a new lease under the same ServerID.
//
// A Watcher turns etcd's changes for one role into Add, Update and Del
// events: it lists at a revision, watches from the next one, and after any
// break of the watch (compaction, leader loss, a restarted etcd) lists again
// and emits what it missed. Subscribers never block it or each other.
package session
