// Package security secures a cluster's traffic: mutual TLS between the
// managers and the nodes they call, with certificates that name a role, and
// the credentials of the etcd client.
//
// Naming convention. A certificate names role R of cluster C when it has
// the DNS SAN "R.C" (RoleDNSName) or the URI SAN "spiffe://C/R" (RoleURI);
// wildcards and the subject's Common Name are not considered. A manager
// dials a node of role R with the authority "R.C" (Authority) and accepts
// the node only if its certificate, signed by the cluster's CA, names R: a
// process holding a certificate for one role cannot serve another role's
// traffic. A node may require its callers to present a certificate of an
// allowed role (UnaryServerInterceptor). A mismatch is a *RoleError with the
// expected roles and the presented names; it converts to
// codes.Unauthenticated (no certificate, or none of the cluster) or
// codes.PermissionDenied (a certificate of another role).
//
// Rotation. A TLS built from files (Config.CertFile, KeyFile, CAFile)
// checks them at most every Config.ReloadInterval, on a handshake: new
// handshakes use the new certificate and CA pool, connections already
// open keep theirs until they close. Files read half-written (a key that
// does not match its certificate) are ignored until they are whole again;
// Reload forces a check and reports the error.
//
// etcd. EtcdConfig turns endpoints, client certificates and a
// user/password into a clientv3.Config; CheckEtcdAccess and EtcdError name
// etcd and the cause of a rejected credential.
package security
