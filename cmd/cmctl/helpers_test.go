package main

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coordkit/clientmanager/internal/etcdtest"
	"github.com/coordkit/clientmanager/session"
)

// defaultTestTimeout bounds every wait of the tests.
const defaultTestTimeout = etcdtest.DefaultTestTimeout

// syncBuffer is a bytes.Buffer safe for a writer and a reader in
// different goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// register registers s on m with the default session config; the
// registration is revoked by t.Cleanup.
func register(t *testing.T, m *etcdtest.Member, s session.Session) *session.Registration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	reg, err := session.Register(ctx, m.Client, s, session.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		_ = reg.Close(ctx)
	})
	return reg
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits until out contains every one of subs.
func eventually(t *testing.T, out *syncBuffer, subs ...string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s := out.String()
		for _, sub := range subs {
			assert.Contains(c, s, sub)
		}
	}, defaultTestTimeout, 10*time.Millisecond)
}
