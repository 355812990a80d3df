package breaker

import (
	"math"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfigIsValid(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	b, err := New(DefaultConfig())
	require.NoError(t, err)
	require.Equal(t, StateClosed, b.State())
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mut   func(*Config)
		field string // must appear in the message; empty: valid
	}{
		{"negative consecutive failures", func(c *Config) { c.ConsecutiveFailures = -1 }, "ConsecutiveFailures (-1)"},
		{"ratio above one", func(c *Config) { c.FailureRatio = 1.5 }, "FailureRatio (1.5)"},
		{"negative ratio", func(c *Config) { c.FailureRatio = -0.1 }, "FailureRatio (-0.1)"},
		{"NaN ratio", func(c *Config) { c.FailureRatio = math.NaN() }, "FailureRatio (NaN)"},
		{"both rules disabled", func(c *Config) { c.ConsecutiveFailures, c.FailureRatio = 0, 0 }, "ConsecutiveFailures (0) and FailureRatio (0)"},
		{"only the consecutive rule", func(c *Config) { c.FailureRatio, c.MinimumThroughput = 0, 0 }, ""},
		{"only the ratio rule", func(c *Config) { c.ConsecutiveFailures = 0 }, ""},
		{"zero minimum throughput with a ratio", func(c *Config) { c.MinimumThroughput = 0 }, "MinimumThroughput (0)"},
		{"negative minimum throughput", func(c *Config) { c.FailureRatio, c.MinimumThroughput = 0, -3 }, "MinimumThroughput (-3)"},
		{"zero window", func(c *Config) { c.Window = 0 }, "Window (0s)"},
		{"zero buckets", func(c *Config) { c.Buckets = 0 }, "Buckets (0)"},
		{"buckets finer than 1ms", func(c *Config) { c.Window, c.Buckets = 5*time.Millisecond, 10 }, "Buckets (10)"},
		{"zero break", func(c *Config) { c.BreakDuration = 0 }, "BreakDuration (0s)"},
		{"max below break", func(c *Config) { c.MaxBreakDuration = time.Second }, "MaxBreakDuration (1s)"},
		{"max equal to break", func(c *Config) { c.MaxBreakDuration = c.BreakDuration }, ""},
		{"jitter of one", func(c *Config) { c.BreakJitter = 1 }, "BreakJitter (1)"},
		{"negative jitter", func(c *Config) { c.BreakJitter = -0.5 }, "BreakJitter (-0.5)"},
		{"zero probes", func(c *Config) { c.HalfOpenProbes = 0 }, "HalfOpenProbes (0)"},
		{"zero lease", func(c *Config) { c.ProbeLease = 0 }, "ProbeLease (0s)"},
		{"negative lease", func(c *Config) { c.ProbeLease = -time.Second }, "ProbeLease (-1s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mut(&cfg)
			err := cfg.Validate()
			_, newErr := New(cfg)
			if tc.field == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				return
			}
			require.ErrorContains(t, err, tc.field)
			require.True(t, errors.Is(err, ErrInvalidConfig))
			require.ErrorContains(t, newErr, tc.field, "New validates")
		})
	}
}
