package session_test

import (
	"context"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/clientmanager/session"
)

// ExampleRegister registers a query node, reacts to a lost lease and
// leaves gracefully. It needs a running etcd, so it has no output to check.
func ExampleRegister() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Print(err)
		return
	}
	defer cli.Close()

	cfg := session.DefaultConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := session.Register(ctx, cli, session.Session{
		ServerName: "querynode",
		Address:    "10.0.0.1:21123",
		Version:    "2.4.1",
	}, cfg)
	if err != nil {
		log.Print(err)
		return
	}
	s := reg.Session()
	fmt.Println("registered as", s.ServerName, s.ServerID, "lease", s.LeaseID)

	stop := make(chan struct{}) // closed when the process is told to stop
	for done := false; !done; {
		select {
		case <-reg.Lost():
			// Stop serving as this incarnation; the Registration is
			// registering again with a new lease under the same ServerID.
			log.Print("lease lost; waiting to be registered again")
			<-reg.Ready()
			log.Print("registered again with lease ", reg.Session().LeaseID)
		case <-reg.Done():
			log.Print("registration ended: ", reg.Err())
			done = true
		case <-stop:
			done = true
		}
	}

	// Graceful stop: watchers see Stopping and drain, then the lease goes.
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer stopCancel()
	if err := reg.MarkStopping(stopCtx); err != nil {
		log.Print(err)
	}
	if err := reg.Close(stopCtx); err != nil {
		log.Print(err)
	}
}
