package session

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecode checks that Decode never panics, that every error it returns
// wraps ErrMalformed, and that a record it accepts survives Encode and
// Decode: the same fields, the same unknown fields (as JSON values), and an
// encoding that no longer changes. The seed corpus is in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"ServerID":1,"ServerName":"querynode","Address":"10.0.0.1:1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		enc, err := s.Encode()
		require.NoError(t, err)
		again, err := Decode(enc)
		require.NoError(t, err, "re-decoding %q", enc)

		known, knownAgain := s, again
		known.extra, knownAgain.extra = nil, nil
		if len(known.ServerLabels) == 0 {
			known.ServerLabels = nil // {} is written as absent
		}
		require.Equal(t, known, knownAgain)
		require.Len(t, again.extra, len(s.extra))
		for k, v := range s.extra {
			require.Contains(t, again.extra, k)
			require.JSONEq(t, string(v), string(again.extra[k]), "unknown field %q", k)
		}
		stable, err := again.Encode()
		require.NoError(t, err)
		require.Equal(t, string(enc), string(stable), "a second round trip changes nothing")
	})
}
