package clientmanager

import (
	"context"
	"strconv"
	"testing"

	"github.com/jonboulle/clockwork"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/coordkit/clientmanager/identity"
)

// Every call made under an Invoke attempt carries the identity of the
// node it is made on exactly once, and the call's request ID once, with
// the caller's metadata and the function's own kept: whether the call
// uses the attempt's context as is (the identity is then the attempt's,
// with only the request ID appended), adds to its metadata, replaces it,
// or calls another node.
func TestAttemptCallsCarryOneIdentity(t *testing.T) {
	t.Parallel()
	m, clients := unitManager(t, clockwork.NewFakeClock(), 2, noBreaker, ok)
	seen := map[int64][]metadata.MD{}
	for _, c := range clients {
		id := c.id
		c.conn().(*fakeConn).invoke = func(ctx context.Context, _ string) error {
			md, _ := metadata.FromOutgoingContext(ctx)
			seen[id] = append(seen[id], md)
			return nil
		}
	}
	other := func(c *Client) *Client { return clients[2-c.id] }
	for _, tc := range []struct {
		name   string
		caller metadata.MD // the caller's outgoing metadata
		call   func(ctx context.Context, c *Client) (*Client, metadata.MD)
	}{
		{"as is", nil, func(ctx context.Context, c *Client) (*Client, metadata.MD) {
			return c, nil
		}},
		{"appended to", nil, func(ctx context.Context, c *Client) (*Client, metadata.MD) {
			return c, metadata.Pairs("k", "v")
		}},
		{"replaced", nil, func(ctx context.Context, c *Client) (*Client, metadata.MD) {
			return c, metadata.Pairs("k", "v")
		}},
		{"another node", nil, func(ctx context.Context, c *Client) (*Client, metadata.MD) {
			return other(c), nil
		}},
		{"the caller's metadata", metadata.Pairs("caller", "x"), func(ctx context.Context, c *Client) (*Client, metadata.MD) {
			return c, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clear(seen)
			ctx := context.Background()
			if tc.caller != nil {
				ctx = metadata.NewOutgoingContext(ctx, tc.caller)
			}
			var target *Client
			var extra metadata.MD
			err := m.Invoke(ctx, testRole, func(ctx context.Context, c *Client) error {
				target, extra = tc.call(ctx, c)
				switch tc.name {
				case "appended to":
					ctx = metadata.AppendToOutgoingContext(ctx, "k", "v")
				case "replaced":
					ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs("k", "v"))
				}
				return callUnary(ctx, target)
			})
			require.NoError(t, err)
			require.Len(t, seen[target.id], 1)
			md := seen[target.id][0]
			s := target.Session()
			require.Equal(t, []string{strconv.FormatInt(s.ServerID, 10)}, md.Get(identity.MetadataServerID))
			require.Equal(t, []string{strconv.FormatInt(s.LeaseID, 10)}, md.Get(identity.MetadataLeaseID))
			require.Len(t, md.Get(identity.MetadataRequestID), 1)
			require.NotEmpty(t, md.Get(identity.MetadataRequestID)[0])
			want := 3
			for k, v := range extra {
				require.Equal(t, v, md.Get(k), "the function's own metadata")
				want++
			}
			for k, v := range tc.caller {
				require.Equal(t, v, md.Get(k), "the caller's metadata")
				want++
			}
			require.Len(t, md, want, "nothing else: %v", md)
		})
	}
}
