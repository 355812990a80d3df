package identity

import (
	"fmt"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/session"
)

// The errdetails.ErrorInfo attached to an identity mismatch status.
const (
	// MismatchReason is the ErrorInfo Reason of an identity mismatch.
	MismatchReason = "IDENTITY_MISMATCH"
	// ErrorDomain is the ErrorInfo Domain of an identity mismatch, and of
	// the other ErrorInfos of this module (such as startup's NOT_SERVING).
	ErrorDomain = "clientmanager.coordkit.dev"
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

// mismatch builds the FailedPrecondition status a rejected call gets.
func mismatch(want claim, self session.Session) error {
	st := status.New(codes.FailedPrecondition, fmt.Sprintf(
		"identity mismatch: call for server %d incarnation %q lease %d reached server %d incarnation %q lease %d",
		want.serverID, quote(want.incarnation), want.leaseID, self.ServerID, quote(self.Incarnation), self.LeaseID))
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: MismatchReason,
		Domain: ErrorDomain,
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

// IsMismatch reports whether err is, or wraps, the status Check returns
// on a mismatch. It looks at the status code and the ErrorInfo detail,
// never at the message.
func IsMismatch(err error) bool {
	_, ok := MismatchInfo(err)
	return ok
}

// MismatchInfo returns the ErrorInfo of an identity mismatch in err's
// chain: the Metadata holds the expected (addressed) and actual (serving)
// ServerID, LeaseID and Incarnation.
func MismatchInfo(err error) (*errdetails.ErrorInfo, bool) {
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
			info.GetReason() == MismatchReason && info.GetDomain() == ErrorDomain {
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
