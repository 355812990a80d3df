package session

import (
	"context"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// List returns each live process of role once, sorted by ServerID, and the
// etcd revision it read at. A process is identified by the ServerID of its
// record: an active exclusive process holds two keys (<role> and
// <role>-<ServerID>) and is listed once, with the record written last.
// Keys of other roles that share the prefix, such as "<role>x-1", are
// ignored; malformed values are skipped. The role is read in pages of
// DefaultWatchConfig's ListPageSize keys, all at the revision of the
// first, which is linearizable; each request is bounded by
// cfg.RequestTimeout.
func List(ctx context.Context, cli *clientv3.Client, cfg Config, role string) ([]Session, int64, error) {
	if cli == nil {
		return nil, 0, errors.New("session: List: cli must not be nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, 0, err
	}
	if err := ValidateRole(role); err != nil {
		return nil, 0, errors.Wrap(err, "session: List")
	}
	st := newState(cfg, role, versionFilter{})
	rev, err := listRole(ctx, cli, cfg, role, DefaultWatchConfig(role).ListPageSize, st)
	if err != nil {
		return nil, 0, err
	}
	st.endList(rev)
	return st.sessions(), rev, nil
}

// maxListRestarts bounds how often a list starts again because the
// revision it reads at was compacted between two of its pages.
const maxListRestarts = 3

// listRole reads every key under role's prefix into st, pageSize keys a
// request, each request bounded by cfg.RequestTimeout: the first at the
// current revision, the others at the same one. It begins a list of st
// (beginList) and returns the revision read at; the caller ends the list
// with it. When that revision is compacted before the last page, the list
// starts again at the current revision.
func listRole(ctx context.Context, cli *clientv3.Client, cfg Config, role string, pageSize int, st *state) (int64, error) {
	prefix := cfg.RolePrefix(role)
	end := clientv3.GetPrefixRangeEnd(prefix)
	for restarts := 0; ; restarts++ {
		st.beginList()
		rev, err := listPages(ctx, cli, cfg, prefix, end, int64(pageSize), st)
		if err == nil {
			return rev, nil
		}
		if rev == 0 || !errors.Is(err, rpctypes.ErrCompacted) || restarts == maxListRestarts {
			return 0, errors.Wrapf(err, "session: list %q", role)
		}
	}
}

// listPages reads [key, end) into st page by page. rev is the revision
// read at, once the first page is read.
func listPages(ctx context.Context, cli *clientv3.Client, cfg Config, key, end string, limit int64, st *state) (rev int64, err error) {
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(limit)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		resp, err := cli.Get(rctx, key, opts...)
		cancel()
		if err != nil {
			return rev, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		st.listPage(resp.Kvs)
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// decodeValue decodes the value of a key of a role. keyID is the ServerID
// the key names (0 for an exclusive role's active key); a record of
// another ServerID under <role>-<id> is malformed.
func decodeValue(keyID int64, value []byte) (Session, error) {
	s, err := Decode(value)
	if err != nil {
		return Session{}, err
	}
	if keyID != 0 && s.ServerID != keyID {
		return Session{}, errors.Wrapf(ErrMalformed, "ServerID (%d) differs from the key's (%d)", s.ServerID, keyID)
	}
	return s, nil
}
