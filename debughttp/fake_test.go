package debughttp

import (
	"context"
	"sync"

	"github.com/coordkit/clientmanager/clientmanager"
	"github.com/coordkit/clientmanager/session"
	"github.com/coordkit/clientmanager/startup"
)

// fakeManager is a Manager whose status the test sets.
type fakeManager struct {
	mu     sync.Mutex
	status []clientmanager.NodeStatus
	health map[string]clientmanager.HealthVerdict
}

// discoveringManager is a fakeManager that also reports its watchers.
type discoveringManager struct {
	*fakeManager
	discovery []clientmanager.DiscoveryStatus
}

func (d discoveringManager) Discovery() []clientmanager.DiscoveryStatus {
	return append([]clientmanager.DiscoveryStatus(nil), d.discovery...)
}

func (f *fakeManager) set(st ...clientmanager.NodeStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = st
}

func (f *fakeManager) Status() []clientmanager.NodeStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]clientmanager.NodeStatus(nil), f.status...)
}

func (f *fakeManager) RoleHealth(role string) clientmanager.HealthVerdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.health[role]; ok {
		return v
	}
	return clientmanager.HealthVerdict{Role: role, Health: clientmanager.Healthy}
}

// fakeRunner is a Runner without transitions: the Handler polls its
// state.
type fakeRunner struct {
	mu    sync.Mutex
	state startup.State
	s     session.Session
}

func (f *fakeRunner) setState(s startup.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = s
}

func (f *fakeRunner) State() startup.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeRunner) Session() session.Session { return f.s }

// subscribingRunner reports its transitions on a channel the test feeds.
type subscribingRunner struct {
	*fakeRunner
	trs chan startup.Transition
}

func (r subscribingRunner) Subscribe(ctx context.Context) <-chan startup.Transition {
	out := make(chan startup.Transition)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case tr := <-r.trs:
				select {
				case out <- tr:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
