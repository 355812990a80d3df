package identity

import (
	"context"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/coordkit/clientmanager/session"
)

// Metadata keys under which a call carries the identity of the process it
// is addressed to. A process is its ServerID and Incarnation (one process
// start); its LeaseID changes when it re-registers after a lost lease, and
// identifies it only when one side has no Incarnation (a record written by
// Milvus).
const (
	// MetadataServerID carries the target's session ServerID, base 10.
	MetadataServerID = "cm-target-server-id"
	// MetadataLeaseID carries the target's session LeaseID, base 10: the
	// lease its record was written with when the caller last saw it.
	MetadataLeaseID = "cm-target-lease-id"
	// MetadataIncarnation carries the target's session Incarnation; it is
	// absent when the target's record has none.
	MetadataIncarnation = "cm-target-incarnation"
)

// Target is the identity of one process as a call carries it, computed
// once per session record instead of once per call. A Target is
// immutable; a caller whose target re-registered under a new lease makes
// a new one.
type Target struct {
	// kv holds the identity's key, value pairs (n of them) and room for
	// the request ID's pair, filled per call in a copy.
	kv [8]string
	n  int
	// md is the identity as metadata, shared by the calls that carry
	// nothing else: never changed once made (grpc only reads it).
	md metadata.MD
	// ctx carries md alone as its outgoing metadata (see Context).
	ctx context.Context
}

// NewTarget returns s's identity: its ServerID, LeaseID and Incarnation
// when it has one.
func NewTarget(s session.Session) *Target {
	t := &Target{kv: [8]string{
		MetadataServerID, strconv.FormatInt(s.ServerID, 10),
		MetadataLeaseID, strconv.FormatInt(s.LeaseID, 10),
	}, n: 4}
	if s.Incarnation != "" {
		t.kv[4], t.kv[5] = MetadataIncarnation, s.Incarnation
		t.n = 6
	}
	t.md = make(metadata.MD, t.n/2)
	for i := 0; i < t.n; i += 2 {
		t.md[t.kv[i]] = []string{t.kv[i+1]}
	}
	t.ctx = metadata.NewOutgoingContext(context.Background(), t.md)
	return t
}

// Context returns a context, made once per Target, whose outgoing
// metadata is t and nothing else; it carries no deadline, cancellation or
// other value. A context type of the caller's own that asks it first for
// the values it does not know itself carries t as a call's outgoing
// metadata without allocating per call; only the request ID, which
// changes per call, is then appended (AppendRequestID).
func (t *Target) Context() context.Context { return t.ctx }

// AppendRequestID returns ctx with requestID added to its outgoing
// metadata under MetadataRequestID: one metadata.AppendToOutgoingContext
// of one pair.
func AppendRequestID(ctx context.Context, requestID string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, MetadataRequestID, requestID)
}

// Outgoing returns ctx with t in its outgoing metadata, replacing any
// identity ctx already carries, and with requestID under
// MetadataRequestID unless requestID is "" or ctx carries one already.
// When ctx carries no outgoing metadata (the usual case) it costs one
// metadata.NewOutgoingContext of the precomputed identity (two small
// allocations), or with a request ID one
// metadata.AppendToOutgoingContext (four).
func (t *Target) Outgoing(ctx context.Context, requestID string) context.Context {
	md, ok := metadata.FromOutgoingContext(ctx) // no copy when there is none
	switch {
	case !ok && requestID == "":
		return metadata.NewOutgoingContext(ctx, t.md)
	case !ok:
		return t.append(ctx, requestID)
	}
	if len(md[MetadataRequestID]) > 0 {
		requestID = "" // the caller's own is kept
	}
	if len(md[MetadataServerID]) > 0 || len(md[MetadataLeaseID]) > 0 || len(md[MetadataIncarnation]) > 0 {
		return t.replace(ctx, md, requestID)
	}
	return t.append(ctx, requestID)
}

// append adds t, and requestID unless it is "", to ctx's outgoing
// metadata.
func (t *Target) append(ctx context.Context, requestID string) context.Context {
	kv := t.kv // a copy on the stack
	n := t.n
	if requestID != "" {
		kv[n], kv[n+1] = MetadataRequestID, requestID
		n += 2
	}
	return metadata.AppendToOutgoingContext(ctx, kv[:n]...)
}

// replace is Outgoing for a ctx whose outgoing metadata md (a copy)
// carries an identity already.
func (t *Target) replace(ctx context.Context, md metadata.MD, requestID string) context.Context {
	md.Delete(MetadataIncarnation)
	for i := 0; i < t.n; i += 2 {
		md.Set(t.kv[i], t.kv[i+1])
	}
	if requestID != "" {
		md.Set(MetadataRequestID, requestID)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// Outgoing returns ctx with s's ServerID, LeaseID and Incarnation (when s
// has one) in its outgoing metadata, replacing any identity ctx already
// carries. A caller that addresses the same process many times keeps a
// Target instead.
func Outgoing(ctx context.Context, s session.Session) context.Context {
	return NewTarget(s).Outgoing(ctx, "")
}

// UnaryClientInterceptor adds target()'s identity to every unary call,
// and the request ID of the call's context (RequestIDFrom) when it has
// one. A nil target adds nothing.
func UnaryClientInterceptor(target func() *Target) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if target != nil {
			ctx = target().Outgoing(ctx, RequestIDFrom(ctx))
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor adds target()'s identity to every stream, and
// the request ID of the stream's context when it has one. A nil target
// adds nothing.
func StreamClientInterceptor(target func() *Target) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
		streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if target != nil {
			ctx = target().Outgoing(ctx, RequestIDFrom(ctx))
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
}
