package identity_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/identity"
	"github.com/coordkit/clientmanager/session"
)

// An Incarnation longer than MaxValueLen is refused with InvalidArgument
// over a real server, unary and stream, before it is compared; one of
// exactly MaxValueLen bytes is accepted when it is the server's.
func TestIdentityIncarnationBounded(t *testing.T) {
	atBound := strings.Repeat("a", identity.MaxValueLen)
	self := session.Session{ServerID: 1, LeaseID: 10, ServerName: "querynode", Incarnation: atBound}
	srv := startIdentityServer(t, listen(t, "127.0.0.1:0"), self)

	for _, tc := range []struct {
		name        string
		incarnation string
		want        codes.Code
	}{
		{name: "at the bound, the server's", incarnation: atBound, want: codes.OK},
		{name: "one byte over", incarnation: atBound + "a", want: codes.InvalidArgument},
		{name: "far over", incarnation: strings.Repeat("b", 64<<10), want: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), identityTestTimeout)
			defer cancel()
			cc := dialIdentity(t, srv.addr, &session.Session{ServerID: 1, LeaseID: 10, Incarnation: tc.incarnation})
			unaryErr, streamErr := check(ctx, cc)
			for kind, err := range map[string]error{"unary": unaryErr, "stream": streamErr} {
				require.Equal(t, tc.want, status.Code(err), "%s: %v", kind, err)
				require.False(t, identity.IsMismatch(err), "%s: not a mismatch: %v", kind, err)
				if tc.want != codes.OK {
					msg := status.Convert(err).Message()
					require.Contains(t, msg, identity.MetadataIncarnation, kind)
					require.Contains(t, msg, "more than 128", kind)
					require.Less(t, len(msg), 200, "%s: the message does not repeat the value", kind)
				}
			}
		})
	}
}

// Check refuses an over-long Incarnation even when the rest of the
// identity names self.
func TestCheckIncarnationBounded(t *testing.T) {
	long := strings.Repeat("f", identity.MaxValueLen+1)
	self := session.Session{ServerID: 3, LeaseID: 30, Incarnation: long}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		identity.MetadataServerID, "3", identity.MetadataLeaseID, "30", identity.MetadataIncarnation, long))
	err := identity.Check(ctx, self)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
}

// An incoming request ID longer than MaxValueLen is not taken up (so the
// calls a handler makes do not carry it on); one at the bound is.
func TestRequestIDFromBounded(t *testing.T) {
	atBound := strings.Repeat("r", identity.MaxValueLen)
	in := func(id string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs(identity.MetadataRequestID, id))
	}
	require.Equal(t, atBound, identity.RequestIDFrom(in(atBound)))
	require.Equal(t, "", identity.RequestIDFrom(in(atBound+"r")))
	// An ID the process set itself is not bounded: it chose it.
	require.Equal(t, atBound+"r", identity.RequestIDFrom(identity.WithRequestID(in(atBound+"r"), atBound+"r")))
}
