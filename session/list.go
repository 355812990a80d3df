package session

import (
	"context"

	"github.com/cockroachdb/errors"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// List returns each live process of role once, sorted by ServerID, and the
// etcd revision it read at. A process is identified by the ServerID of its
// record: an active exclusive process holds two keys (<role> and
// <role>-<ServerID>) and is listed once, with the record written last.
// Keys of other roles that share the prefix, such as "<role>x-1", are
// ignored; malformed values are skipped. The read is linearizable and
// bounded by cfg.RequestTimeout.
func List(ctx context.Context, cli *clientv3.Client, cfg Config, role string) ([]Session, int64, error) {
	if cli == nil {
		return nil, 0, errors.New("session: List: cli must not be nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, 0, err
	}
	if err := validRole(role); err != nil {
		return nil, 0, err
	}
	kvs, rev, err := listRole(ctx, cli, cfg, role)
	if err != nil {
		return nil, 0, err
	}
	st := newState(cfg, role, versionFilter{})
	st.replace(kvs, rev)
	return st.sessions(), rev, nil
}

// listRole reads every key under role's prefix.
func listRole(ctx context.Context, cli *clientv3.Client, cfg Config, role string) ([]*mvccpb.KeyValue, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, cfg.RolePrefix(role), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, errors.Wrapf(err, "session: list %q", role)
	}
	return resp.Kvs, resp.Header.Revision, nil
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
