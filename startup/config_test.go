package startup

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	require.Equal(t, 90*time.Second, cfg.DependencyTimeout)
	require.Equal(t, 30*time.Second, cfg.StopTimeout)
	require.Equal(t, Continue, cfg.DependencyPolicy)
	require.ErrorContains(t, cfg.Validate(), "Session.ServerName", "the role must be set")
	cfg.Session.ServerName = "querynode"
	require.NoError(t, cfg.Validate())
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		field  string // "" when valid
	}{
		{"valid", func(*Config) {}, ""},
		{"zero dependency timeout", func(c *Config) { c.DependencyTimeout = 0 }, ""},
		{"allowlisted service", func(c *Config) { c.GateAllowlist = []string{"/a.B/"} }, ""},
		{"role with slash", func(c *Config) { c.Session.ServerName = "a/b" }, "Session.ServerName"},
		{"role id", func(c *Config) { c.Session.ServerName = "id" }, "Session.ServerName"},
		{"negative dependency timeout", func(c *Config) { c.DependencyTimeout = -time.Second }, "DependencyTimeout (-1s)"},
		{"unknown policy", func(c *Config) { c.DependencyPolicy = 7 }, "DependencyPolicy (7)"},
		{"zero stop timeout", func(c *Config) { c.StopTimeout = 0 }, "StopTimeout (0s)"},
		{"session config", func(c *Config) { c.SessionConfig.TTL = 0 }, "SessionConfig"},
		{"empty dependency", func(c *Config) { c.Dependencies = []Dependency{{Role: ""}} }, "Dependencies[0].Role"},
		{"dependency id", func(c *Config) { c.Dependencies = []Dependency{{Role: "id"}} }, `Dependencies[0].Role: role ("id")`},
		{"dependency with space", func(c *Config) { c.Dependencies = []Dependency{{Role: "root coord"}} }, "Dependencies[0].Role"},
		{"duplicate dependency", func(c *Config) {
			c.Dependencies = []Dependency{{Role: "rootcoord"}, {Role: "rootcoord", Optional: true}}
		}, "Dependencies[1].Role (\"rootcoord\") is listed twice"},
		{"allowlist without slash", func(c *Config) { c.GateAllowlist = []string{"a.B/C"} }, "GateAllowlist[0]"},
		{"allowlist too deep", func(c *Config) { c.GateAllowlist = []string{"/a.B/C/D"} }, "GateAllowlist[0]"},
		{"allowlist empty service", func(c *Config) { c.GateAllowlist = []string{"//C"} }, "GateAllowlist[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Session.ServerName = "querynode"
			tc.change(&cfg)
			err := cfg.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.field)
		})
	}
}

func TestDependencyPolicyString(t *testing.T) {
	require.Equal(t, "continue", Continue.String())
	require.Equal(t, "strict", Strict.String())
	require.Equal(t, "DependencyPolicy(9)", DependencyPolicy(9).String())
}
