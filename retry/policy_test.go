package retry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Policy)
		field string
	}{
		{"backoff initial zero", func(p *Policy) { p.Initial = 0 }, "retry: Backoff.Initial"},
		{"backoff max below initial", func(p *Policy) { p.Backoff.Max = time.Millisecond }, "retry: Backoff.Max"},
		{"backoff multiplier below one", func(p *Policy) { p.Multiplier = 0.5 }, "retry: Backoff.Multiplier"},
		{"backoff jitter above one", func(p *Policy) { p.Jitter = 1.5 }, "retry: Backoff.Jitter"},
		{"negative attempt timeout", func(p *Policy) { p.PerAttemptTimeout = -1 }, "retry: PerAttemptTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			tc.edit(&p)
			err := p.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.field)
		})
	}
	require.NoError(t, DefaultPolicy().Validate())
	require.NoError(t, Policy{Backoff: DefaultBackoff()}.Validate(), "zero Attempts means until the context ends")
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	require.Equal(t, DefaultBackoff(), p.Backoff)
	require.Equal(t, 3, p.Attempts)
	require.Zero(t, p.PerAttemptTimeout)
}
