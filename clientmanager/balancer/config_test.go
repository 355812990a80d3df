package balancer

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring; empty means valid
	}{
		{name: "default", mutate: func(*Config) {}},
		{name: "empty policy", mutate: func(c *Config) { c.Policy = "" }},
		{name: "round robin ignores look-aside", mutate: func(c *Config) { c.Policy, c.LookAside = PolicyRoundRobin, LookAsideConfig{} }},
		{name: "look-aside", mutate: func(c *Config) { c.Policy = PolicyLookAside }},
		{name: "no blackout, no penalty", mutate: func(c *Config) {
			c.Policy, c.LookAside.Blackout, c.LookAside.ErrorPenalty = PolicyLookAside, 0, 0
		}},
		{name: "unknown policy", mutate: func(c *Config) { c.Policy = "random" }, wantErr: `Policy ("random")`},
		{name: "zero expiry", mutate: func(c *Config) { c.Policy, c.LookAside.CostExpiry = PolicyLookAside, 0 }, wantErr: "CostExpiry (0s)"},
		{name: "negative blackout", mutate: func(c *Config) { c.Policy, c.LookAside.Blackout = PolicyLookAside, -time.Second }, wantErr: "Blackout (-1s)"},
		{name: "negative penalty", mutate: func(c *Config) { c.Policy, c.LookAside.ErrorPenalty = PolicyLookAside, -time.Millisecond }, wantErr: "ErrorPenalty (-1ms)"},
		{name: "zero smoothing", mutate: func(c *Config) { c.Policy, c.LookAside.Smoothing = PolicyLookAside, 0 }, wantErr: "Smoothing (0)"},
		{name: "smoothing above one", mutate: func(c *Config) { c.Policy, c.LookAside.Smoothing = PolicyLookAside, 1.5 }, wantErr: "Smoothing (1.5)"},
		{name: "NaN smoothing", mutate: func(c *Config) { c.Policy, c.LookAside.Smoothing = PolicyLookAside, math.NaN() }, wantErr: "Smoothing (NaN)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			b, newErr := New(cfg)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				require.NotNil(t, b)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorIs(t, newErr, ErrInvalidConfig)
			require.Nil(t, b)
		})
	}
}

func TestNewSelectsPolicy(t *testing.T) {
	tests := []struct {
		policy Policy
		want   any
	}{
		{"", &PowerOfTwo{}},
		{PolicyPowerOfTwo, &PowerOfTwo{}},
		{PolicyRoundRobin, &RoundRobin{}},
		{PolicyLookAside, &LookAside{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Policy = tt.policy
			b, err := New(cfg)
			require.NoError(t, err)
			require.IsType(t, tt.want, b)
		})
	}
}

func TestNewLookAsideRejectsInvalidConfig(t *testing.T) {
	_, err := NewLookAside(LookAsideConfig{})
	require.ErrorIs(t, err, ErrInvalidConfig)
}
