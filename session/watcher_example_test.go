package session_test

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/session"
)

// A component follows the query nodes of versions 2.4 and later: first the
// current set as Adds, then every change, until ctx ends.
func ExampleNewWatcher() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = cli.Close() }()

	wc := session.DefaultWatchConfig("querynode")
	wc.VersionRange = ">= 2.4.0"
	w, err := session.NewWatcher(cli, session.DefaultConfig(), wc)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = w.Close() }()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ev := range w.Subscribe(ctx) {
		switch ev.Type {
		case session.EventAdd:
			fmt.Println("online:", ev.Session.ServerID, ev.Session.Address)
		case session.EventUpdate:
			if ev.Session.Stopping {
				fmt.Println("draining:", ev.Session.ServerID)
			}
		case session.EventDel:
			fmt.Println("gone:", ev.Session.ServerID)
		}
	}
}

// List reads the live processes of a role once, without watching.
func ExampleList() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = cli.Close() }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sessions, rev, err := session.List(ctx, cli, session.DefaultConfig(), "datanode")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range sessions {
		fmt.Println(s.ServerID, s.Address, s.Stopping)
	}
	fmt.Println("at revision", rev)
}
