package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// probeKey is read (count only) to check that etcd answers.
const probeKey = "\x00cmctl-probe"

// diagnoseTimeout bounds each connection made to find why an endpoint
// does not answer.
const diagnoseTimeout = time.Second

// etcdUnreachableError is returned when etcd did not answer within the
// command's -wait; the command exits with code 2.
type etcdUnreachableError struct {
	endpoints []string
	wait      time.Duration
	cause     string // why, per endpoint
}

func (e *etcdUnreachableError) Error() string {
	return fmt.Sprintf("etcd unreachable at %s within -wait %s: %s", strings.Join(e.endpoints, ","), e.wait, e.cause)
}

// checkEtcd reads a key within wait and, when etcd does not answer, finds
// out why. It returns ctx's error if ctx ended first.
func checkEtcd(ctx context.Context, cli *clientv3.Client, endpoints []string, wait time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, err := cli.Get(wctx, probeKey, clientv3.WithCountOnly())
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &etcdUnreachableError{endpoints: endpoints, wait: wait, cause: diagnose(ctx, endpoints, err)}
}

// diagnose says why etcd did not answer: what a connection to each
// endpoint finds, or what etcd answered.
func diagnose(ctx context.Context, endpoints []string, err error) string {
	if msg, ok := refused(err); ok {
		return msg
	}
	causes := make([]string, 0, len(endpoints))
	for _, ep := range endpoints {
		c := dialCause(ctx, ep)
		if len(endpoints) > 1 {
			c = ep + ": " + c
		}
		causes = append(causes, c)
	}
	return strings.Join(causes, "; ")
}

// refused recognises an answer of etcd itself: it is reachable, but
// refuses the request (authentication, permissions).
func refused(err error) (string, bool) {
	for _, e := range []error{rpctypes.ErrUserEmpty, rpctypes.ErrAuthFailed, rpctypes.ErrInvalidAuthToken,
		rpctypes.ErrPermissionDenied, rpctypes.ErrAuthOldRevision} {
		if errors.Is(err, e) || rpctypes.Error(err) == e {
			return "etcd answered but refused the request: " + e.Error() + " (authentication is enabled; cmctl has no credentials)", true
		}
	}
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return "etcd answered but refused the request: " + status.Convert(err).Message(), true
	}
	return "", false
}

// dialCause connects to ep over TCP and, if that works, tries TLS, to say
// why no etcd answered there.
func dialCause(ctx context.Context, ep string) string {
	d := net.Dialer{Timeout: diagnoseTimeout}
	host := strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://")
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		var dnsErr *net.DNSError
		var opErr *net.OpError
		switch {
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			return "no such host " + dnsErr.Name
		case errors.As(err, &dnsErr):
			return "cannot resolve " + dnsErr.Name + ": " + dnsErr.Err
		case errors.Is(err, syscall.ECONNREFUSED):
			return "connection refused (nothing listens on " + host + ")"
		case errors.As(err, &opErr) && opErr.Timeout():
			return fmt.Sprintf("no answer to a TCP connection within %s (a firewall, or a wrong address)", diagnoseTimeout)
		}
		return err.Error()
	}
	_ = conn.Close()
	tconn, err := tls.DialWithDialer(&d, "tcp", host, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only asks whether the server speaks TLS
	if err == nil {
		_ = tconn.Close()
		return "the server speaks TLS, and cmctl connects without it"
	}
	return "TCP connects, but no etcd answers there (another service on that port?)"
}
