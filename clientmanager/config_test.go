package clientmanager

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
	"github.com/coordkit/clientmanager/clientmanager/breaker"
	"github.com/coordkit/clientmanager/clientmanager/bulkhead"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Session", func(c *Config) { c.SessionConfig.RootPath = "" }},
		{"DialAttempts", func(c *Config) { c.DialAttempts = 0 }},
		{"DialTimeout", func(c *Config) { c.DialTimeout = 0 }},
		{"DialBackoff", func(c *Config) { c.DialBackoff.Multiplier = 0.5 }},
		{"MaxParallelDials", func(c *Config) { c.MaxParallelDials = 0 }},
		{"ReprobeInterval", func(c *Config) { c.ReprobeInterval = -time.Second }},
		{"CallAttempts", func(c *Config) { c.CallAttempts = 0 }},
		{"CallTimeout", func(c *Config) { c.CallTimeout = 0 }},
		{"CallBackoff", func(c *Config) { c.CallBackoff.Initial = 0 }},
		{"ConnectBackoffMax", func(c *Config) { c.ConnectBackoffMax = time.Millisecond }},
		{"KeepaliveTime", func(c *Config) { c.KeepaliveTime = time.Second }},
		{"KeepaliveTimeout", func(c *Config) { c.KeepaliveTimeout = 0 }},
		{"DrainTimeout", func(c *Config) { c.DrainTimeout = -1 }},
		{"Balancer", func(c *Config) { c.Balancer.Policy = "random" }},
		{"VersionRange", func(c *Config) { c.VersionRange = map[string]string{"querynode": ">= banana"} }},
		{"Breaker", func(c *Config) { c.Breaker.BreakDuration = 0 }},
		{"Bulkhead", func(c *Config) { c.Bulkhead.MaxConcurrent = 0 }},
		{"MaxEjectionPercent (101)", func(c *Config) { c.MaxEjectionPercent = 101 }},
		{"MaxEjectionPercent (-1)", func(c *Config) { c.MaxEjectionPercent = -1 }},
		{"RetryBudget.Ratio (-0.1)", func(c *Config) { c.RetryBudget.Ratio = -0.1 }},
		{"RetryBudget.Ratio (+Inf)", func(c *Config) { c.RetryBudget.Ratio = math.Inf(1) }},
		{"RetryBudget.MinPerSecond (-1)", func(c *Config) { c.RetryBudget.MinPerSecond = -1 }},
		{"RetryBudget.Window (1ms)", func(c *Config) { c.RetryBudget.Window = time.Millisecond }},
		{"PoolSize (0)", func(c *Config) { c.PoolSize = 0 }},
		{"PoolSize (65)", func(c *Config) { c.PoolSize = 65 }},
		{"IdleTimeout (-1s)", func(c *Config) { c.IdleTimeout = -time.Second }},
		{"UnhealthyAfter (0s)", func(c *Config) { c.UnhealthyAfter = 0 }},
		{"BreakerRefreshInterval (0s)", func(c *Config) { c.BreakerRefreshInterval = 0 }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.field)
			_, err = newManager(nil, cfg)
			require.ErrorContains(t, err, tc.field, "New validates")
		})
	}
}

func TestConfigValidateNamesEveryBadField(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DialAttempts, cfg.CallTimeout, cfg.MaxParallelDials = -1, -time.Second, 0
	err := cfg.Validate()
	require.Error(t, err)
	for _, s := range []string{"DialAttempts (-1)", "CallTimeout (-1s)", "MaxParallelDials (0)"} {
		require.Contains(t, err.Error(), s)
	}
}

func TestDefaultConfigMatchesTheDocs(t *testing.T) {
	c := DefaultConfig()
	require.Equal(t, 3, c.DialAttempts)
	require.Equal(t, 30*time.Second, c.DialTimeout)
	require.Equal(t, 64, c.MaxParallelDials)
	require.Equal(t, 30*time.Second, c.ReprobeInterval)
	require.Equal(t, 3, c.CallAttempts)
	require.Equal(t, 10*time.Second, c.CallTimeout)
	require.Equal(t, 3*time.Second, c.ConnectBackoffMax)
	require.Equal(t, 10*time.Second, c.KeepaliveTime)
	require.Equal(t, 20*time.Second, c.KeepaliveTimeout)
	require.True(t, c.SuspectOnHealth)
	require.Equal(t, 10*time.Second, c.DrainTimeout)
	require.Equal(t, balancer.PolicyPowerOfTwo, c.Balancer.Policy)
	require.Equal(t, 100*time.Millisecond, c.DialBackoff.Initial)
	require.Equal(t, 1.6, c.DialBackoff.Multiplier)
	require.Equal(t, 3*time.Second, c.DialBackoff.Max)

	require.Equal(t, breaker.DefaultConfig().ConsecutiveFailures, c.Breaker.ConsecutiveFailures)
	require.Equal(t, breaker.DefaultConfig().BreakDuration, c.Breaker.BreakDuration)
	require.Equal(t, bulkhead.DefaultConfig(), c.Bulkhead)
	require.Equal(t, 50, c.MaxEjectionPercent)
	require.False(t, c.PanicMode)
	require.Equal(t, RetryBudget{Ratio: 0.2, MinPerSecond: 10, Window: 10 * time.Second}, c.RetryBudget)
	require.Equal(t, 1, c.PoolSize)
	require.Equal(t, 10*time.Minute, c.IdleTimeout)
	require.Equal(t, 30*time.Second, c.UnhealthyAfter)
	require.Equal(t, 250*time.Millisecond, c.BreakerRefreshInterval)
}
