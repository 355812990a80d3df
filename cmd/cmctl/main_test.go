package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/coordkit/clientmanager/internal/etcdtest"
)

func TestMain(m *testing.M) {
	// The demo runs its components from its own binary: in the tests,
	// this one.
	if code, ok := runChild(os.Args[1:]); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m, etcdtest.LeakOptions()...)
}
