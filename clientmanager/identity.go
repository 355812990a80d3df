package clientmanager

import (
	"context"
	"fmt"
	"strconv"

	"github.com/coordkit/clientmanager/session"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
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

// The errdetails.ErrorInfo attached to an identity mismatch status.
const (
	// IdentityMismatchReason is the ErrorInfo Reason of an identity mismatch.
	IdentityMismatchReason = "IDENTITY_MISMATCH"
	// IdentityErrorDomain is the ErrorInfo Domain of an identity mismatch.
	IdentityErrorDomain = "clientmanager.coordkit.dev"
)

// ErrorInfo metadata keys of an identity mismatch. "expected" is the
// identity the call was addressed to, "actual" the identity of the process
// that received it. An Incarnation key holds "" when that side has none.
const (
	MismatchExpectedServerID    = "expected_server_id"
	MismatchExpectedLeaseID     = "expected_lease_id"
	MismatchExpectedIncarnation = "expected_incarnation"
	MismatchActualServerID      = "actual_server_id"
	MismatchActualLeaseID       = "actual_lease_id"
	MismatchActualIncarnation   = "actual_incarnation"
)

// maxQuotedValue bounds how much of a malformed metadata value an error
// message repeats.
const maxQuotedValue = 64

// OutgoingIdentity returns ctx with s's ServerID, LeaseID and Incarnation
// (when s has one) in its outgoing metadata, replacing any identity ctx
// already carries.
func OutgoingIdentity(ctx context.Context, s session.Session) context.Context {
	sid := strconv.FormatInt(s.ServerID, 10)
	lid := strconv.FormatInt(s.LeaseID, 10)
	if metadata.ValueFromOutgoingContext(ctx, MetadataServerID) == nil &&
		metadata.ValueFromOutgoingContext(ctx, MetadataLeaseID) == nil &&
		metadata.ValueFromOutgoingContext(ctx, MetadataIncarnation) == nil {
		if s.Incarnation == "" {
			return metadata.AppendToOutgoingContext(ctx, MetadataServerID, sid, MetadataLeaseID, lid)
		}
		return metadata.AppendToOutgoingContext(ctx, MetadataServerID, sid, MetadataLeaseID, lid,
			MetadataIncarnation, s.Incarnation)
	}
	md, _ := metadata.FromOutgoingContext(ctx) // a copy
	md.Set(MetadataServerID, sid)
	md.Set(MetadataLeaseID, lid)
	if s.Incarnation == "" {
		md.Delete(MetadataIncarnation)
	} else {
		md.Set(MetadataIncarnation, s.Incarnation)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// IdentityUnaryClientInterceptor adds target()'s identity to every unary
// call. A nil target adds nothing.
func IdentityUnaryClientInterceptor(target func() session.Session) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if target != nil {
			ctx = OutgoingIdentity(ctx, target())
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// IdentityStreamClientInterceptor adds target()'s identity to every stream.
// A nil target adds nothing.
func IdentityStreamClientInterceptor(target func() session.Session) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
		streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if target != nil {
			ctx = OutgoingIdentity(ctx, target())
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
}

// CheckIdentity is the server-side identity check. It returns nil when the
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
// an integer, an empty Incarnation, an Incarnation or either id without the
// other id, or a key repeated) is an InvalidArgument status.
//
// A call that carries no identity at all passes: clients that do not go
// through the manager (health probes, tools, other systems) keep working,
// and the check only fences calls that say which process they are for.
func CheckIdentity(ctx context.Context, self session.Session) error {
	want, ok, err := incomingIdentity(ctx)
	if err != nil || !ok {
		return err
	}
	return compareIdentity(want, self)
}

// identity is what a call says about the process it is for.
type identity struct {
	serverID, leaseID int64
	incarnation       string // "" when the call names none
}

// incomingIdentity reads the identity from ctx's incoming metadata; ok is
// false when there is none.
func incomingIdentity(ctx context.Context) (id identity, ok bool, err error) {
	sids := metadata.ValueFromIncomingContext(ctx, MetadataServerID)
	lids := metadata.ValueFromIncomingContext(ctx, MetadataLeaseID)
	incs := metadata.ValueFromIncomingContext(ctx, MetadataIncarnation)
	if len(sids) == 0 && len(lids) == 0 && len(incs) == 0 {
		return identity{}, false, nil
	}
	if id.serverID, err = parseIdentityValue(MetadataServerID, sids); err != nil {
		return identity{}, false, err
	}
	if id.leaseID, err = parseIdentityValue(MetadataLeaseID, lids); err != nil {
		return identity{}, false, err
	}
	switch {
	case len(incs) > 1:
		return identity{}, false, status.Errorf(codes.InvalidArgument,
			"clientmanager: metadata %q must carry at most one value, got %d", MetadataIncarnation, len(incs))
	case len(incs) == 1 && incs[0] == "":
		return identity{}, false, status.Errorf(codes.InvalidArgument,
			"clientmanager: metadata %q is empty", MetadataIncarnation)
	case len(incs) == 1:
		id.incarnation = incs[0]
	}
	return id, true, nil
}

func parseIdentityValue(key string, vals []string) (int64, error) {
	if len(vals) != 1 {
		return 0, status.Errorf(codes.InvalidArgument,
			"clientmanager: metadata %q must carry exactly one value, got %d", key, len(vals))
	}
	v, err := strconv.ParseInt(vals[0], 10, 64)
	if err != nil {
		return 0, status.Errorf(codes.InvalidArgument,
			"clientmanager: metadata %q (%q) is not a base-10 int64", key, quote(vals[0]))
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

// compareIdentity accepts a call for self's process: session.SameProcess
// is the one rule of what "the same process" means.
func compareIdentity(want identity, self session.Session) error {
	if self.ServerID == 0 && self.Incarnation != "" && want.incarnation == self.Incarnation {
		// A process between the put of its session and learning its
		// ServerID (startup.Runner before Register returns) is known by
		// its Incarnation, random per process start.
		return nil
	}
	if session.SameProcess(session.Session{ServerID: want.serverID, LeaseID: want.leaseID, Incarnation: want.incarnation}, self) {
		return nil
	}
	return identityMismatch(want, self)
}

// identityMismatch builds the FailedPrecondition status a rejected call gets.
func identityMismatch(want identity, self session.Session) error {
	st := status.New(codes.FailedPrecondition, fmt.Sprintf(
		"clientmanager: identity mismatch: call for server %d incarnation %q lease %d reached server %d incarnation %q lease %d",
		want.serverID, quote(want.incarnation), want.leaseID, self.ServerID, quote(self.Incarnation), self.LeaseID))
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: IdentityMismatchReason,
		Domain: IdentityErrorDomain,
		Metadata: map[string]string{
			MismatchExpectedServerID:    strconv.FormatInt(want.serverID, 10),
			MismatchExpectedLeaseID:     strconv.FormatInt(want.leaseID, 10),
			MismatchExpectedIncarnation: quote(want.incarnation),
			MismatchActualServerID:      strconv.FormatInt(self.ServerID, 10),
			MismatchActualLeaseID:       strconv.FormatInt(self.LeaseID, 10),
			MismatchActualIncarnation:   self.Incarnation,
		},
	})
	if err != nil { // only if ErrorInfo could not be marshalled
		return st.Err()
	}
	return withInfo.Err()
}

// IsIdentityMismatch reports whether err is, or wraps, the status
// CheckIdentity returns on a mismatch. It looks at the status code and the
// ErrorInfo detail, never at the message.
func IsIdentityMismatch(err error) bool {
	_, ok := IdentityMismatchInfo(err)
	return ok
}

// IdentityMismatchInfo returns the ErrorInfo of an identity mismatch in
// err's chain: the Metadata holds the expected (addressed) and actual
// (serving) ServerID, LeaseID and Incarnation.
func IdentityMismatchInfo(err error) (*errdetails.ErrorInfo, bool) {
	var info *errdetails.ErrorInfo
	anyInChain(err, func(e error) bool {
		if gs, ok := e.(interface{ GRPCStatus() *status.Status }); ok {
			info = mismatchInfo(gs.GRPCStatus())
		}
		return info != nil
	})
	return info, info != nil
}

func mismatchInfo(st *status.Status) *errdetails.ErrorInfo {
	if st == nil || st.Code() != codes.FailedPrecondition {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok &&
			info.GetReason() == IdentityMismatchReason && info.GetDomain() == IdentityErrorDomain {
			return info
		}
	}
	return nil
}

// anyInChain walks err's tree (Unwrap() error and Unwrap() []error) and
// reports whether pred holds for any error in it.
func anyInChain(err error, pred func(error) bool) bool {
	for err != nil {
		if pred(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if anyInChain(e, pred) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// IdentityUnaryServerInterceptor rejects unary calls addressed to another
// process than self() with CheckIdentity. self is called only for calls
// that carry an identity.
func IdentityUnaryServerInterceptor(self func() session.Session) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := checkIdentityFunc(ctx, self); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// IdentityStreamServerInterceptor rejects streams addressed to another
// process than self() with CheckIdentity. self is called only for streams
// that carry an identity.
func IdentityStreamServerInterceptor(self func() session.Session) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := checkIdentityFunc(ss.Context(), self); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// checkIdentityFunc is CheckIdentity with self read lazily. A nil self is
// the identity of no process: every call that carries one is rejected.
func checkIdentityFunc(ctx context.Context, self func() session.Session) error {
	want, ok, err := incomingIdentity(ctx)
	if err != nil || !ok {
		return err
	}
	if self == nil {
		return identityMismatch(want, session.Session{})
	}
	return compareIdentity(want, self())
}
