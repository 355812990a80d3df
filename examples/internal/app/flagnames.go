package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/coordkit/clientmanager/startup"
)

// Flag names shared with cmctl, so that one spelling works everywhere.
// The etcd and root path flags also answer to their short forms -etcd and
// -root.
const (
	FlagEtcdEndpoints = "etcd-endpoints"
	FlagRootPath      = "root-path"
	FlagTTL           = "ttl"
	FlagHTTPAddr      = "http-addr"
)

// Policies are the values of -dependency-policy.
var Policies = []string{startup.Continue.String(), startup.Strict.String()}

// choice is a string flag that takes one of a fixed set of values; any
// other is an error, not a silent default.
type choice struct {
	v       *string
	allowed []string
}

func (c choice) String() string {
	if c.v == nil {
		return ""
	}
	return *c.v
}

func (c choice) Set(s string) error {
	if !slices.Contains(c.allowed, s) {
		return fmt.Errorf("must be one of %s", strings.Join(c.allowed, ", "))
	}
	*c.v = s
	return nil
}
