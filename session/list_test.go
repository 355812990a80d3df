package session

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

func TestList(t *testing.T) {
	m := etcdtest.Start(t)
	cfg := testConfig(t)
	ctx := context.Background()
	const role = "querynode"

	empty, rev, err := List(ctx, m.Client, cfg, role)
	require.NoError(t, err)
	require.Empty(t, empty)
	require.Positive(t, rev)

	for _, id := range []int64{12, 3, 7} {
		putSession(t, m.Client, cfg, rec(role, id))
	}
	active := rec(role, 3)
	active.Stopping = true // written last: the record List returns
	put(t, m.Client, cfg.ActiveKey(role), mustEncode(t, active))
	put(t, m.Client, cfg.Key(role, 20), []byte("not a record"))
	putSession(t, m.Client, cfg, rec(role+"x", 1))
	putSession(t, m.Client, cfg, rec("query", 2))
	last := put(t, m.Client, cfg.IDKey(), []byte("20"))

	got, rev, err := List(ctx, m.Client, cfg, role)
	require.NoError(t, err)
	require.Equal(t, []int64{3, 7, 12}, ids(got), "each process once, sorted, other roles and malformed values left out")
	require.True(t, got[0].Stopping)
	require.Equal(t, last, rev, "the revision read at")
}

func TestListRejectsBadInput(t *testing.T) {
	m := etcdtest.Start(t)
	bad := DefaultConfig()
	bad.TTL = 0
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		cli  *clientv3.Client
		cfg  Config
		role string
		want string
	}{
		{"nil client", context.Background(), nil, DefaultConfig(), "querynode", "cli"},
		{"config", context.Background(), m.Client, bad, "querynode", "TTL"},
		{"empty role", context.Background(), m.Client, DefaultConfig(), "", "role"},
		{"role id", context.Background(), m.Client, DefaultConfig(), "id", "role"},
		{"ended context", ended, m.Client, DefaultConfig(), "querynode", "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rev, err := List(tt.ctx, tt.cli, tt.cfg, tt.role)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.Nil(t, got)
			require.Zero(t, rev)
		})
	}
}
