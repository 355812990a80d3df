package session_test

import (
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/session"
)

func TestValidateRole(t *testing.T) {
	for _, tc := range []struct {
		role string
		ok   bool
	}{
		{"querynode", true},
		{"query-node_2", true},
		{"QueryNode.v2", true}, // '.' is allowed in a key segment
		{"", false},
		{"id", false}, // the ServerID counter's key
		{"query/node", false},
		{"/querynode", false},
		{"query node", false},
		{"querynode ", false},
		{"ID", true}, // only the exact segment "id" is taken
	} {
		t.Run(tc.role, func(t *testing.T) {
			err := session.ValidateRole(tc.role)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, errors.Is(err, session.ErrInvalidRole), "%v", err)
			require.Contains(t, err.Error(), "role (")
			require.Contains(t, err.Error(), tc.role)
		})
	}
}

// Every config that names a role applies the same rule, naming its field.
func TestRoleFieldsUseValidateRole(t *testing.T) {
	cfg := session.DefaultWatchConfig("id")
	err := cfg.Validate()
	require.True(t, errors.Is(err, session.ErrInvalidRole), "%v", err)
	require.Contains(t, err.Error(), `session: Role: role ("id")`)
}
