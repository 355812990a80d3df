package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// putMilvusRecord writes a session as Milvus 2.x does: its own fields
// (TriggerKill, IndexEngineVersion, no Incarnation), under a lease, at
// <root>/session/<key>.
func putMilvusRecord(t *testing.T, m *etcdtest.Member, key string, id int64, role, addr string, exclusive bool) int64 {
	t.Helper()
	ctx := testContext(t)
	lease, err := m.Client.Grant(ctx, 60)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		_, _ = m.Client.Revoke(ctx, lease.ID)
	})
	v := fmt.Sprintf(`{"ServerID":%d,"ServerName":%q,"Address":%q,"Exclusive":%t,"Stopping":false,"TriggerKill":true,`+
		`"Version":"2.4.9","LeaseID":%d,"HostName":"milvus-0","IndexEngineVersion":{"CurrentIndexVersion":5,"MinimalIndexVersion":0}}`,
		id, role, addr, exclusive, lease.ID)
	_, err = m.Client.Put(ctx, session.DefaultConfig().Prefix()+"/"+key, v, clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	return int64(lease.ID)
}

// TestMilvusRecords: sessions and watch read a Milvus cluster's etcd: an
// exclusive coordinator under its role's key only (no ServerID suffix),
// and a worker under <role>-<ServerID>.
func TestMilvusRecords(t *testing.T) {
	m := etcdtest.Start(t)
	rcLease := putMilvusRecord(t, m, "rootcoord", 1, "rootcoord", "10.0.0.1:53100", true)
	qnLease := putMilvusRecord(t, m, "querynode-7", 7, "querynode", "10.0.0.7:21123", false)

	var out, errOut syncBuffer
	require.NoError(t, cmdSessions(testContext(t), []string{"-etcd", m.Endpoint()}, &out, &errOut))
	requireLine(t, out.String(), fmt.Sprintf(`^rootcoord\s+1\s+10\.0\.0\.1:53100\s+2\.4\.9\s+%x\s+false\s+true$`, rcLease))
	requireLine(t, out.String(), fmt.Sprintf(`^querynode\s+7\s+10\.0\.0\.7:21123\s+2\.4\.9\s+%x\s+false\s+false$`, qnLease))
	require.Empty(t, errOut.String())

	for _, role := range []string{"rootcoord", "querynode"} {
		t.Run("watch "+role, func(t *testing.T) {
			ctx, cancel := context.WithCancel(testContext(t))
			defer cancel()
			var out, errOut syncBuffer
			done := make(chan error, 1)
			go func() { done <- cmdWatch(ctx, []string{"-etcd", m.Endpoint(), "-role", role}, &out, &errOut) }()
			want := map[string]string{"rootcoord": "rootcoord-1  address=10.0.0.1:53100", "querynode": "querynode-7  address=10.0.0.7:21123"}
			eventually(t, &out, "  add     "+want[role])
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(defaultTestTimeout):
				t.Fatal("watch did not stop")
			}
			require.Empty(t, errOut.String())
		})
	}
}
