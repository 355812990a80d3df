package bulkhead

import (
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring; empty means valid
	}{
		{name: "default", mutate: func(*Config) {}},
		{name: "no queue", mutate: func(c *Config) { c.MaxQueue = 0 }},
		{name: "no wait limit", mutate: func(c *Config) { c.MaxWait = 0 }},
		{name: "upper limits", mutate: func(c *Config) { c.MaxConcurrent, c.MaxQueue = MaxConcurrentLimit, MaxQueueLimit }},
		{name: "zero concurrency", mutate: func(c *Config) { c.MaxConcurrent = 0 }, wantErr: "MaxConcurrent (0)"},
		{name: "negative concurrency", mutate: func(c *Config) { c.MaxConcurrent = -3 }, wantErr: "MaxConcurrent (-3)"},
		{name: "huge concurrency", mutate: func(c *Config) { c.MaxConcurrent = MaxConcurrentLimit + 1 }, wantErr: "MaxConcurrent (65537)"},
		{name: "negative queue", mutate: func(c *Config) { c.MaxQueue = -1 }, wantErr: "MaxQueue (-1)"},
		{name: "huge queue", mutate: func(c *Config) { c.MaxQueue = MaxQueueLimit + 1 }, wantErr: "MaxQueue (1048577)"},
		{name: "negative wait", mutate: func(c *Config) { c.MaxWait = -time.Second }, wantErr: "MaxWait (-1s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			_, newErr := New(cfg)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorIs(t, newErr, ErrInvalidConfig)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	require.Equal(t, Config{MaxConcurrent: 64, MaxQueue: 128, MaxWait: time.Second}, cfg)
}

func TestIsOverloaded(t *testing.T) {
	require.True(t, IsOverloaded(ErrBulkheadFull))
	require.True(t, IsOverloaded(errors.Wrap(ErrBulkheadTimeout, "x")))
	require.False(t, IsOverloaded(errors.New("other")))
	require.False(t, IsOverloaded(nil))
}
