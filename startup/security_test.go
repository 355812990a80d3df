package startup

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/security"
	"github.com/coordkit/clientmanager/security/securitytest"
)

// TestRunnerServesMutualTLSToAllowedRoles runs a node with Config.TLS and
// AllowedCallerRoles: a manager of an allowed role finds it online and
// calls it; a caller of another role is refused with PermissionDenied.
func TestRunnerServesMutualTLSToAllowedRoles(t *testing.T) {
	m := etcdtest.Start(t)
	ca := securitytest.NewCA(t, "ca")
	nodeTLS, _ := ca.TLS(t, "cm", "querynode")
	mgrTLS, _ := ca.TLS(t, "cm", "querycoord")
	proxyTLS, _ := ca.TLS(t, "cm", "proxy")

	cfg := testConfig("querynode")
	cfg.TLS = nodeTLS
	cfg.AllowedCallerRoles = []string{"querycoord"}
	h := startRunner(t, m.Client, nil, cfg, &testComponent{})
	h.waitState(StateHealthy)

	mcfg := clientmanager.DefaultConfig()
	mcfg.SessionConfig = cfg.SessionConfig
	mcfg.TLS = mgrTLS
	mgr, err := clientmanager.New(m.Client, mcfg)
	require.NoError(t, err)
	defer func() { _ = mgr.Close() }()
	require.NoError(t, mgr.AddDependency("querynode"))
	require.NoError(t, mgr.WaitForRole(testCtx(t), "querynode", 1))
	require.NoError(t, callUnary(testCtx(t), mgr.RoleConn("querynode"), methodEcho))

	cc, err := grpc.NewClient("passthrough:///"+h.addr, grpc.WithTransportCredentials(proxyTLS.ClientCredentials()),
		grpc.WithAuthority(security.Authority("cm", "querynode")))
	require.NoError(t, err)
	defer func() { _ = cc.Close() }()
	err = callUnary(testCtx(t), cc, methodEcho)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "want role querycoord")
}

func TestConfigSecurityValidate(t *testing.T) {
	cfg := testConfig("querynode")
	cfg.AllowedCallerRoles = []string{"querycoord"}
	require.ErrorContains(t, cfg.Validate(), "AllowedCallerRoles ([querycoord]) need TLS")
	ca := securitytest.NewCA(t, "ca")
	cfg.TLS, _ = ca.TLS(t, "cm", "querynode")
	require.NoError(t, cfg.Validate())
	cfg.AllowedCallerRoles = []string{"a.b"}
	require.ErrorContains(t, cfg.Validate(), `AllowedCallerRoles[0] ("a.b")`)
}
