package security

import (
	"crypto/x509"
	"net/url"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func TestCertificateRolesFollowTheNamingConvention(t *testing.T) {
	for _, tc := range []struct {
		name string
		dns  []string
		uris []string
		want []string
	}{
		{"dns", []string{"querynode.c1"}, nil, []string{"querynode"}},
		{"uri", nil, []string{"spiffe://c1/datanode"}, []string{"datanode"}},
		{"both once", []string{"querynode.c1"}, []string{"spiffe://c1/querynode"}, []string{"querynode"}},
		{"other cluster", []string{"querynode.c2"}, []string{"spiffe://c2/querynode"}, nil},
		{"wildcard is no role", []string{"*.c1"}, nil, nil},
		{"nested name is no role", []string{"a.querynode.c1"}, []string{"spiffe://c1/a/b"}, nil},
		{"id is no role", []string{"id.c1"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &x509.Certificate{DNSNames: tc.dns}
			for _, u := range tc.uris {
				c.URIs = append(c.URIs, mustURL(t, u))
			}
			require.Equal(t, tc.want, CertificateRoles("c1", c))
		})
	}
}

func TestVerifyRoleReturnsTypedErrorWithNames(t *testing.T) {
	other := &x509.Certificate{DNSNames: []string{"datanode.c1"}, URIs: []*url.URL{mustURL(t, "spiffe://c1/datanode")}}
	require.NoError(t, VerifyRole("c1", other, "datanode"))
	require.NoError(t, VerifyRole("c1", other), "no roles given: any role of the cluster")

	err := VerifyRole("c1", other, "querynode", "querycoord")
	var re *RoleError
	require.True(t, errors.As(err, &re), "%v", err)
	require.Equal(t, []string{"querynode", "querycoord"}, re.Expected)
	require.Equal(t, []string{"datanode.c1", "spiffe://c1/datanode"}, re.Presented)
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	require.Contains(t, err.Error(), "certificate names [datanode.c1 spiffe://c1/datanode], want role querynode (querynode.c1 or spiffe://c1/querynode)")
	info := status.Convert(err).Details()[0].(*errdetails.ErrorInfo)
	require.Equal(t, RoleMismatchReason, info.Reason)
	require.Equal(t, "querynode,querycoord", info.Metadata["expected"])

	stranger := &x509.Certificate{DNSNames: []string{"querynode.c2"}}
	require.Equal(t, codes.Unauthenticated, status.Code(VerifyRole("c1", stranger, "querynode")))
	err = VerifyRole("c1", nil, "querynode")
	require.ErrorIs(t, err, ErrNoCertificate)
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestAuthorityNamesRole(t *testing.T) {
	a := Authority("c1", "querynode")
	require.Equal(t, "querynode.c1", a)
	r, ok := RoleFromAuthority("c1", a)
	require.True(t, ok)
	require.Equal(t, "querynode", r)
	for _, bad := range []string{"127.0.0.1:1234", "querynode.c2", ".c1", "a.b.c1"} {
		_, ok := RoleFromAuthority("c1", bad)
		require.False(t, ok, bad)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	require.ErrorContains(t, c.Validate(), "no certificate")
	c.CertFile = "x"
	require.ErrorContains(t, c.Validate(), "must all be set")
	c.KeyFile, c.CAFile = "y", "z"
	require.NoError(t, c.Validate())
	c.Cluster = "a/b"
	require.ErrorContains(t, c.Validate(), `Cluster ("a/b")`)
	c = DefaultConfig()
	c.CertFile, c.KeyFile, c.CAFile = "x", "y", "z"
	c.ReloadInterval = -1
	require.ErrorContains(t, c.Validate(), "ReloadInterval (-1ns)")
}
