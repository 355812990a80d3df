package clientmanager

import "context"

// refusal returns, as a *NodeError of the role, why the role's watcher
// cannot read its sessions: etcd refused the manager's credentials or
// permissions (session.Watcher.Err; session.IsEtcdAuthError holds for
// it). nil while the watcher reads.
func (r *role) refusal() error {
	if err := r.w.Err(); err != nil {
		return &NodeError{Role: r.name, Err: err}
	}
	return nil
}

// cancelOnRefusal calls cancel as soon as the role's watcher reports a
// refusal by etcd, so that a wait on ctx ends then instead of at its
// deadline. The returned stop cancels and waits for the goroutine; the
// caller calls it before returning.
func (r *role) cancelOnRefusal(ctx context.Context, cancel context.CancelFunc) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-r.w.Refused():
			cancel()
		case <-ctx.Done():
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
