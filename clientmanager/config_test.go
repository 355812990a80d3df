package clientmanager

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/clientmanager/balancer"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Session", func(c *Config) { c.Session.RootPath = "" }},
		{"DialAttempts", func(c *Config) { c.DialAttempts = 0 }},
		{"DialTimeout", func(c *Config) { c.DialTimeout = 0 }},
		{"DialBackoff", func(c *Config) { c.DialBackoff.Multiplier = 0.5 }},
		{"MaxParallelDials", func(c *Config) { c.MaxParallelDials = 0 }},
		{"ReprobeInterval", func(c *Config) { c.ReprobeInterval = -time.Second }},
		{"CallAttempts", func(c *Config) { c.CallAttempts = 0 }},
		{"CallTimeout", func(c *Config) { c.CallTimeout = 0 }},
		{"CallBackoff", func(c *Config) { c.CallBackoff.InitialBackoff = 0 }},
		{"ConnectBackoffMax", func(c *Config) { c.ConnectBackoffMax = time.Millisecond }},
		{"KeepaliveTime", func(c *Config) { c.KeepaliveTime = time.Second }},
		{"KeepaliveTimeout", func(c *Config) { c.KeepaliveTimeout = 0 }},
		{"DrainTimeout", func(c *Config) { c.DrainTimeout = -1 }},
		{"Balancer", func(c *Config) { c.Balancer.Policy = "random" }},
		{"VersionRange", func(c *Config) { c.VersionRange = map[string]string{"querynode": ">= banana"} }},
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
	require.Equal(t, 100*time.Millisecond, c.DialBackoff.InitialBackoff)
	require.Equal(t, 1.6, c.DialBackoff.Multiplier)
	require.Equal(t, 3*time.Second, c.DialBackoff.MaxBackoff)
}
