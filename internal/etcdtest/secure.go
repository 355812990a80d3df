package etcdtest

import (
	"context"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/embedetcd"
)

// SecureConfig describes an embedded etcd that serves its clients over
// TLS: the server's certificate (valid for 127.0.0.1) and key, the CA that
// client certificates must chain to, and whether every client must
// present one (with auth enabled, etcd then takes the user from its Common
// Name when the client gives no user name).
type SecureConfig = embedetcd.TLS

// StartSecure runs a single-member cluster serving its clients over TLS on
// https://127.0.0.1:<port> and returns it once it serves. Its Client is
// nil: make clients with the TLS and credentials under test.
func StartSecure(t testing.TB, sc SecureConfig) *Member {
	t.Helper()
	cfg := memberConfig(t, "s0")
	cfg.InitialClusterToken = "etcdtest-secure"
	cfg.TLS = &sc
	m := &Member{cfg: cfg}
	m.start(t)
	waitReady(t, m)
	return m
}

// EnableAuth creates the user root (password rootPassword, role root) and
// turns authentication on, through cli, a client of a member that has no
// authentication yet.
func EnableAuth(t testing.TB, cli *clientv3.Client, rootPassword string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTestTimeout)
	defer cancel()
	if _, err := cli.UserAdd(ctx, "root", rootPassword); err != nil {
		t.Fatalf("etcdtest: add user root: %v", err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatalf("etcdtest: grant role root: %v", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatalf("etcdtest: enable auth: %v", err)
	}
}
