package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/coordkit/clientmanager/internal/embedetcd"
)

// etcdReadyTimeout bounds the embedded etcd's start.
const etcdReadyTimeout = 15 * time.Second

// demoEtcd is the demo's etcd: an embedded single member that the demo can
// stop and start again on the same ports and data, or external endpoints
// that it only uses.
type demoEtcd struct {
	endpoints []string
	external  bool

	dir    string
	cfg    embedetcd.Config // its ports filled in at the first start
	e      *embedetcd.Etcd
	closed chan struct{} // closed when the member last stopped has closed
}

// startEtcd returns external endpoints as they are, or starts an embedded
// member with its data in a new temporary directory.
func startEtcd(endpoints []string) (*demoEtcd, error) {
	if len(endpoints) > 0 {
		return &demoEtcd{endpoints: endpoints, external: true}, nil
	}
	dir, err := os.MkdirTemp("", "cmctl-demo-")
	if err != nil {
		return nil, fmt.Errorf("etcd data dir: %w", err)
	}
	d := &demoEtcd{dir: dir, cfg: embedetcd.Config{Dir: dir, Name: "demo", ReadyTimeout: etcdReadyTimeout}}
	if err := d.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	d.endpoints = []string{d.e.Endpoint()}
	return d, nil
}

// start runs the embedded member and waits until it serves.
func (d *demoEtcd) start() error {
	d.waitClosed()
	e, err := embedetcd.Start(context.Background(), d.cfg)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	d.e, d.cfg = e, e.Config()
	return nil
}

// stop stops the embedded member at once, as a crash would (Close alone
// lets open streams run for seconds: it serves them until its request
// timeout); its data stays for start.
func (d *demoEtcd) stop() {
	if d.e == nil {
		return
	}
	e, closed := d.e, make(chan struct{})
	d.e, d.closed = nil, closed
	e.Kill()
	go func() { // owned by d: start and close wait for it
		defer close(closed)
		e.Close()
	}()
}

// waitClosed waits until a stopped member has let go of its ports and
// data.
func (d *demoEtcd) waitClosed() {
	if d.closed != nil {
		<-d.closed
		d.closed = nil
	}
}

// close stops the embedded member and removes its data.
func (d *demoEtcd) close() error {
	if d.external {
		return nil
	}
	d.stop()
	d.waitClosed()
	if err := os.RemoveAll(d.dir); err != nil {
		return fmt.Errorf("remove etcd data: %w", err)
	}
	return nil
}
