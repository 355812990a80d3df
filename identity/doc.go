// Package identity says which process a gRPC call is for, and which
// request it belongs to.
//
// A process is one start of a node: its session's ServerID and
// Incarnation (see session.SameProcess); its LeaseID identifies it only
// when one side has no Incarnation (a record written by Milvus). A caller
// sends the identity of the process it addressed in the call's metadata
// (Outgoing, or a Target computed once per session record, or the client
// interceptors); the server's interceptors compare it with its own (Check)
// and reject a call for another process — typically an earlier one that
// served on the same address — with a FailedPrecondition status carrying
// an IDENTITY_MISMATCH ErrorInfo (IsMismatch, MismatchInfo). A call that
// carries no identity passes.
//
// A call may also carry a request ID (MetadataRequestID), so that one
// request can be followed across processes: WithRequestID puts one in a
// context, RequestIDFrom reads it back (or, in a handler, the one the call
// being served carries), and RequestIDs makes new ones cheaply.
//
// The package has no state of its own; everything in it is safe for
// concurrent use.
package identity
