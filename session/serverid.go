package session

import (
	"context"
	"strconv"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/retry"
)

// allocateServerID takes the next ServerID from the counter at cfg.IDKey().
//
// The counter holds the next free ID as a decimal string, as Milvus keeps
// it; a missing counter is created with "1". An ID is taken by
// compare-and-swap on the counter's ModRevision. Losing the swap to another
// process is progress, not failure: the transaction's else branch reads the
// new value and the next swap is tried at once. Errors (etcd unreachable, a
// request timing out) are retried under cfg.Retry; the whole allocation is
// bounded by ctx.
func allocateServerID(ctx context.Context, cli *clientv3.Client, cfg Config, o options) (int64, error) {
	var id int64
	err := retry.Do(ctx, cfg.Retry, func(ctx context.Context) error {
		var err error
		id, err = takeServerID(ctx, cli, cfg)
		return err
	}, retryOptions(o)...)
	if err != nil {
		return 0, errors.Wrapf(err, "session: allocate ServerID at %s", cfg.IDKey())
	}
	return id, nil
}

// takeServerID runs the compare-and-swap loop until it wins a swap, fails,
// or ctx ends.
func takeServerID(ctx context.Context, cli *clientv3.Client, cfg Config) (int64, error) {
	key := cfg.IDKey()
	kv, err := getCounter(ctx, cli, cfg)
	if err != nil {
		return 0, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if kv == nil {
			kv, err = createCounter(ctx, cli, cfg)
			if err != nil {
				return 0, err
			}
			continue
		}
		next, err := strconv.ParseInt(string(kv.Value), 10, 64)
		if err != nil || next < 1 {
			return 0, retry.Unrecoverable(errors.Newf(
				"session: ServerID counter %s holds %q, not a positive decimal", key, kv.Value))
		}
		rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		resp, err := cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpPut(key, strconv.FormatInt(next+1, 10))).
			Else(clientv3.OpGet(key)).
			Commit()
		cancel()
		if err != nil {
			return 0, errors.Wrap(err, "session: swap ServerID counter")
		}
		if resp.Succeeded {
			return next, nil
		}
		kv = firstKV(resp, 0)
	}
}

func getCounter(ctx context.Context, cli *clientv3.Client, cfg Config) (*mvccpb.KeyValue, error) {
	rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	resp, err := cli.Get(rctx, cfg.IDKey())
	if err != nil {
		return nil, errors.Wrap(err, "session: read ServerID counter")
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0], nil
}

// createCounter puts "1" if the counter is absent and returns the counter
// as it now is (the one created, or the one another process created first).
func createCounter(ctx context.Context, cli *clientv3.Client, cfg Config) (*mvccpb.KeyValue, error) {
	key := cfg.IDKey()
	rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	resp, err := cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, "1")).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, errors.Wrap(err, "session: create ServerID counter")
	}
	if resp.Succeeded {
		rev := resp.Header.Revision
		return &mvccpb.KeyValue{Key: []byte(key), Value: []byte("1"), CreateRevision: rev, ModRevision: rev}, nil
	}
	return firstKV(resp, 0), nil
}

// firstKV returns the first key of the range response at index i of a
// transaction's responses, or nil.
func firstKV(resp *clientv3.TxnResponse, i int) *mvccpb.KeyValue {
	if i >= len(resp.Responses) {
		return nil
	}
	r := resp.Responses[i].GetResponseRange()
	if r == nil || len(r.Kvs) == 0 {
		return nil
	}
	return r.Kvs[0]
}
