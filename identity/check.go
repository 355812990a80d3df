package identity

import (
	"context"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/session"
)

// maxQuotedValue bounds how much of a malformed metadata value an error
// message repeats.
const maxQuotedValue = 64

// MaxValueLen bounds the identity values an incoming call may carry: a
// longer Incarnation (a process's is 16 hex digits) is an InvalidArgument
// status, and a longer request ID is ignored (RequestIDFrom), so a caller
// cannot make a server hold or log large values.
const MaxValueLen = 128

// Check is the server-side identity check. It returns nil when the
// incoming call is addressed to self's process (session.SameProcess): the
// same ServerID and, when both the call and self have an Incarnation, the
// same Incarnation — whatever the LeaseID, so a call addressed with the
// lease self held before it re-registered passes — or, when either has
// none (a record written by Milvus), the same LeaseID; a self without a
// ServerID yet (0: a process whose key is visible before its registration
// returned) is matched by its Incarnation alone. Otherwise it returns
// a FailedPrecondition status with an IDENTITY_MISMATCH ErrorInfo: the
// caller addressed another process, typically an earlier one that served on
// the same address. A malformed identity (a ServerID or LeaseID that is not
// an integer, an empty Incarnation or one longer than MaxValueLen, an
// Incarnation or either id without the other id, or a key repeated) is an
// InvalidArgument status.
//
// A call that carries no identity at all passes: clients that do not go
// through the manager (health probes, tools, other systems) keep working,
// and the check only fences calls that say which process they are for.
func Check(ctx context.Context, self session.Session) error {
	want, ok, err := incoming(ctx)
	if err != nil || !ok {
		return err
	}
	return compare(want, self)
}

// UnaryServerInterceptor rejects unary calls addressed to another process
// than self() with Check. self is called only for calls that carry an
// identity.
func UnaryServerInterceptor(self func() session.Session) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := checkFunc(ctx, self); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor rejects streams addressed to another process
// than self() with Check. self is called only for streams that carry an
// identity.
func StreamServerInterceptor(self func() session.Session) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := checkFunc(ss.Context(), self); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// checkFunc is Check with self read lazily. A nil self is the identity of
// no process: every call that carries one is rejected.
func checkFunc(ctx context.Context, self func() session.Session) error {
	want, ok, err := incoming(ctx)
	if err != nil || !ok {
		return err
	}
	if self == nil {
		return mismatch(want, session.Session{})
	}
	return compare(want, self())
}

// claim is what a call says about the process it is for.
type claim struct {
	serverID, leaseID int64
	incarnation       string // "" when the call names none
}

// incoming reads the identity from ctx's incoming metadata; ok is false
// when there is none.
func incoming(ctx context.Context) (id claim, ok bool, err error) {
	sids := metadata.ValueFromIncomingContext(ctx, MetadataServerID)
	lids := metadata.ValueFromIncomingContext(ctx, MetadataLeaseID)
	incs := metadata.ValueFromIncomingContext(ctx, MetadataIncarnation)
	if len(sids) == 0 && len(lids) == 0 && len(incs) == 0 {
		return claim{}, false, nil
	}
	if id.serverID, err = parseValue(MetadataServerID, sids); err != nil {
		return claim{}, false, err
	}
	if id.leaseID, err = parseValue(MetadataLeaseID, lids); err != nil {
		return claim{}, false, err
	}
	switch {
	case len(incs) > 1:
		return claim{}, false, status.Errorf(codes.InvalidArgument,
			"identity: metadata %q must carry at most one value, got %d", MetadataIncarnation, len(incs))
	case len(incs) == 1 && incs[0] == "":
		return claim{}, false, status.Errorf(codes.InvalidArgument,
			"identity: metadata %q is empty", MetadataIncarnation)
	case len(incs) == 1 && len(incs[0]) > MaxValueLen:
		return claim{}, false, status.Errorf(codes.InvalidArgument,
			"identity: metadata %q is %d bytes, more than %d", MetadataIncarnation, len(incs[0]), MaxValueLen)
	case len(incs) == 1:
		id.incarnation = incs[0]
	}
	return id, true, nil
}

func parseValue(key string, vals []string) (int64, error) {
	if len(vals) != 1 {
		return 0, status.Errorf(codes.InvalidArgument,
			"identity: metadata %q must carry exactly one value, got %d", key, len(vals))
	}
	v, err := strconv.ParseInt(vals[0], 10, 64)
	if err != nil {
		return 0, status.Errorf(codes.InvalidArgument,
			"identity: metadata %q (%q) is not a base-10 int64", key, quote(vals[0]))
	}
	return v, nil
}

// quote bounds a value an error message repeats.
func quote(v string) string {
	if len(v) > maxQuotedValue {
		return v[:maxQuotedValue] + "…"
	}
	return v
}

// compare accepts a call for self's process: session.SameProcess is the
// one rule of what "the same process" means.
func compare(want claim, self session.Session) error {
	if self.ServerID == 0 && self.Incarnation != "" && want.incarnation == self.Incarnation {
		// A process between the put of its session and learning its
		// ServerID (startup.Runner before Register returns) is known by
		// its Incarnation, random per process start.
		return nil
	}
	if session.SameProcess(session.Session{ServerID: want.serverID, LeaseID: want.leaseID, Incarnation: want.incarnation}, self) {
		return nil
	}
	return mismatch(want, self)
}
