package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

const (
	// etcdReadyTimeout bounds the embedded etcd's start.
	etcdReadyTimeout = 15 * time.Second
	// etcdRebindTimeout bounds the retries of a restart whose port is
	// still held for a moment by the stopped member's sockets.
	etcdRebindTimeout = 5 * time.Second
)

// demoEtcd is the demo's etcd: an embedded single member that the demo can
// stop and start again on the same ports and data, or external endpoints
// that it only uses.
type demoEtcd struct {
	endpoints []string
	external  bool

	dir                  string
	clientPort, peerPort int
	e                    *embed.Etcd
	closed               chan struct{} // closed when the member last stopped has closed
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
	d := &demoEtcd{dir: dir}
	if d.clientPort, d.peerPort, err = freePorts(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	d.endpoints = []string{"127.0.0.1:" + strconv.Itoa(d.clientPort)}
	if err := d.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return d, nil
}

// start runs the embedded member and waits until it serves.
func (d *demoEtcd) start() error {
	d.waitClosed()
	ec := embed.NewConfig()
	ec.Name = "demo"
	ec.Dir = d.dir
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(d.clientPort)}
	pu := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(d.peerPort)}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	ec.InitialCluster = ec.Name + "=" + pu.String()
	ec.TickMs, ec.ElectionMs = 50, 500
	e, err := embed.StartEtcd(ec)
	for deadline := time.Now().Add(etcdRebindTimeout); err != nil && errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // the stopped member's sockets let go of the port
		e, err = embed.StartEtcd(ec)
	}
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcd: %w", err)
	case <-time.After(etcdReadyTimeout):
		e.Close()
		return fmt.Errorf("etcd not ready within %s", etcdReadyTimeout)
	}
	d.e = e
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
	e.Server.HardStop()
	go func() { // owned by d: start and close wait for it
		defer close(closed)
		e.Close()
		<-e.Server.StopNotify()
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

// freePorts returns two loopback ports free now, below the kernel's
// ephemeral range (32768–60999 on Linux): a member started again on its
// port must not find it taken by some connection's local end.
func freePorts() (client, peer int, err error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ports) < 2 && tries < 1000; tries++ {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	if len(ports) < 2 {
		return 0, 0, errors.New("no free loopback ports for etcd in [20000, 32000)")
	}
	return ports[0], ports[1], nil
}
