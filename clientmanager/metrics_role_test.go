package clientmanager

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// A dependency's success and attempt series exist, at 0, once it is
// added, and count the calls made to it.
func TestRoleSeriesExistFromAddDependency(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, nil, WithRegisterer(reg))
	require.NoError(t, e.m.AddDependency(testRole))
	ok := e.m.metrics.calls.WithLabelValues(testRole, "OK")
	attempts := e.m.metrics.attempts.WithLabelValues(testRole)
	require.Zero(t, testutil.ToFloat64(ok))
	require.Zero(t, testutil.ToFloat64(attempts))
	n, err := testutil.GatherAndCount(reg, "clientmanager_calls_total", "clientmanager_call_attempts_total")
	require.NoError(t, err)
	require.Equal(t, 2, n, "both series, before any call")

	s := startServer(t)
	e.node(1, s.addr)
	e.waitOnline(1)
	require.NoError(t, e.m.Invoke(t.Context(), testRole, callUnary))
	require.Equal(t, 1.0, testutil.ToFloat64(ok))
	require.Equal(t, 1.0, testutil.ToFloat64(attempts))
}
