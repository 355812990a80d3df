package security

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/errors"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RoleDNSName returns the DNS SAN that names role of cluster: "role.cluster".
func RoleDNSName(cluster, role string) string { return role + "." + cluster }

// RoleURI returns the URI SAN that names role of cluster:
// "spiffe://cluster/role".
func RoleURI(cluster, role string) string { return "spiffe://" + cluster + "/" + role }

// Authority returns the authority a manager dials a node of role with
// (grpc.WithAuthority): RoleDNSName. The client credentials of a TLS
// expect the node's certificate to name the role the authority names.
func Authority(cluster, role string) string { return RoleDNSName(cluster, role) }

// RoleFromAuthority returns the role that authority names in cluster, and
// false when it names none (an address, another cluster's name).
func RoleFromAuthority(cluster, authority string) (string, bool) {
	role, ok := strings.CutSuffix(authority, "."+cluster)
	if !ok || !validRole(role) {
		return "", false
	}
	return role, true
}

// CertificateRoles returns the roles of cluster that cert names, in the
// order of its SANs, each once.
func CertificateRoles(cluster string, cert *x509.Certificate) []string {
	var roles []string
	add := func(r string) {
		if validRole(r) && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	for _, d := range cert.DNSNames {
		if r, ok := strings.CutSuffix(d, "."+cluster); ok {
			add(r)
		}
	}
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" && u.Host == cluster && u.RawQuery == "" && u.Fragment == "" {
			add(strings.TrimPrefix(u.Path, "/"))
		}
	}
	return roles
}

// CertificateNames returns the names cert presents, as a RoleError shows
// them: its DNS and URI SANs, or its Common Name when it has none.
func CertificateNames(cert *x509.Certificate) []string {
	names := slices.Clone(cert.DNSNames)
	for _, u := range cert.URIs {
		names = append(names, u.String())
	}
	if len(names) == 0 && cert.Subject.CommonName != "" {
		names = append(names, "CN="+cert.Subject.CommonName)
	}
	return names
}

// validRole reports whether r can be a role: the session key rule, and
// no '.' or '*', which a DNS SAN could not tell apart.
func validRole(r string) bool {
	return r != "" && r != "id" && !strings.ContainsAny(r, "/ .*")
}

// ErrNoCertificate is returned (inside a *RoleError) when the peer
// presented no certificate, or the connection is not TLS.
var ErrNoCertificate = errors.New("no TLS client certificate")

// The errdetails.ErrorInfo attached to a RoleError's status.
const (
	// RoleMismatchReason is the ErrorInfo Reason of a RoleError.
	RoleMismatchReason = "ROLE_MISMATCH"
	// ErrorDomain is the ErrorInfo Domain of a RoleError.
	ErrorDomain = "security.coordkit.dev"
)

// RoleError is returned when a peer's certificate does not name a role it
// must: a node's certificate not naming the role it was discovered under,
// a caller's not naming an allowed role.
type RoleError struct {
	// Cluster is the cluster the roles belong to.
	Cluster string
	// Expected are the roles accepted (one when dialing a node).
	Expected []string
	// Presented are the names of the peer's certificate (see
	// CertificateNames); empty when it presented none.
	Presented []string
	// Code is codes.Unauthenticated when the peer presented no certificate
	// naming a role of the cluster, codes.PermissionDenied when it names
	// another role.
	Code codes.Code
	// Err is ErrNoCertificate when the peer presented none; else nil.
	Err error
}

// Error implements error.
func (e *RoleError) Error() string {
	want := make([]string, len(e.Expected))
	for i, r := range e.Expected {
		want[i] = fmt.Sprintf("%s (%s or %s)", r, RoleDNSName(e.Cluster, r), RoleURI(e.Cluster, r))
	}
	if len(want) == 0 {
		want = []string{"of cluster " + e.Cluster}
	}
	if e.Err != nil {
		return fmt.Sprintf("security: %v, want a certificate of role %s", e.Err, strings.Join(want, ", "))
	}
	return fmt.Sprintf("security: certificate names [%s], want role %s",
		strings.Join(e.Presented, " "), strings.Join(want, ", "))
}

// Unwrap returns Err.
func (e *RoleError) Unwrap() error { return e.Err }

// GRPCStatus converts e to a status with Code, e's message and an
// ErrorInfo (RoleMismatchReason) listing the expected roles and the
// presented names, comma-separated.
func (e *RoleError) GRPCStatus() *status.Status {
	st := status.New(e.Code, e.Error())
	if d, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: RoleMismatchReason,
		Domain: ErrorDomain,
		Metadata: map[string]string{
			"cluster":   e.Cluster,
			"expected":  strings.Join(e.Expected, ","),
			"presented": strings.Join(e.Presented, ","),
		},
	}); err == nil {
		return d
	}
	return st
}

// VerifyRole returns nil when cert names one of roles of cluster (any role
// when roles is empty), or else a *RoleError.
func VerifyRole(cluster string, cert *x509.Certificate, roles ...string) error {
	if cert == nil {
		return &RoleError{Cluster: cluster, Expected: roles, Code: codes.Unauthenticated, Err: ErrNoCertificate}
	}
	has := CertificateRoles(cluster, cert)
	if len(roles) == 0 && len(has) > 0 {
		return nil
	}
	for _, r := range has {
		if slices.Contains(roles, r) {
			return nil
		}
	}
	code := codes.PermissionDenied
	if len(has) == 0 {
		code = codes.Unauthenticated
	}
	return &RoleError{Cluster: cluster, Expected: slices.Clone(roles), Presented: CertificateNames(cert), Code: code}
}
