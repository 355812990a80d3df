package clientmanager

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/coordkit/clientmanager/session"
)

// fakeConn is a Conn whose state the test sets; Invoke answers with
// invoke's result, and the connector's identity probe with probe's (nil:
// accepted).
type fakeConn struct {
	mu      sync.Mutex
	state   connectivity.State
	changed chan struct{}
	invoke  func(ctx context.Context, method string) error
	probe   func(ctx context.Context) error
	closed  atomic.Bool
}

func newFakeConn() *fakeConn {
	return &fakeConn{state: connectivity.Ready, changed: make(chan struct{})}
}

func (f *fakeConn) setState(st connectivity.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = st
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConn) GetState() connectivity.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeConn) WaitForStateChange(ctx context.Context, src connectivity.State) bool {
	for {
		f.mu.Lock()
		st, ch := f.state, f.changed
		f.mu.Unlock()
		if st != src {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (f *fakeConn) Connect() {}

func (f *fakeConn) Close() error {
	f.closed.Store(true)
	return nil
}

func (f *fakeConn) Invoke(ctx context.Context, method string, _, _ any, _ ...grpc.CallOption) error {
	if method == identityProbeMethod {
		if f.probe != nil {
			return f.probe(ctx)
		}
		return nil
	}
	if f.invoke != nil {
		return f.invoke(ctx, method)
	}
	return nil
}

func (f *fakeConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "fakeConn has no streams")
}

// dialerFunc adapts a function to Dialer.
type dialerFunc func(ctx context.Context, s session.Session) (Conn, error)

func (f dialerFunc) Dial(ctx context.Context, s session.Session) (Conn, error) { return f(ctx, s) }
