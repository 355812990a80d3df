// Package embedetcd runs an embedded etcd member (go.etcd.io/etcd/server/v3/embed)
// on loopback ports, for the module's tests, its demo and its measuring
// tools. It has no testing dependency: it returns errors, and internal/etcdtest
// wraps it for tests.
//
// Start runs a member and waits until it serves; Launch runs it without
// waiting, for the members of a cluster that wait on each other (see
// StartCluster). A member is stopped by Close (after Kill: as a crash
// would) and started again, on the same ports and data, by Start(ctx, e.Config()).
// Ports are taken below the kernel's ephemeral range (see FreePorts), so
// that a restarted member does not find its port taken by some
// connection's local end.
package embedetcd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultName         = "default"
	DefaultClusterToken = "embedetcd"
	DefaultTickMs       = 50
	DefaultElectionMs   = 500
	DefaultBcryptCost   = 4
	DefaultReadyTimeout = 20 * time.Second
)

// rebindTimeout bounds Launch's retries on ports that a stopped member's
// sockets still hold.
const rebindTimeout = 5 * time.Second

// Config describes one member. Every field but Dir has a usable zero value.
type Config struct {
	// Dir holds the member's data; required. A member started again with
	// the same Dir and ports resumes with its data.
	Dir string
	// Name is the member's name in its cluster; default DefaultName.
	Name string
	// ClientPort and PeerPort are the member's ports on 127.0.0.1; 0 (the
	// default) takes free ones (FreePorts). Give a stopped member's ports
	// (Etcd.Config) to start it again on them.
	ClientPort, PeerPort int
	// InitialCluster lists the members of a new cluster as
	// name=peerURL,...; default: this member alone.
	InitialCluster string
	// InitialClusterToken tells clusters apart; default DefaultClusterToken.
	InitialClusterToken string
	// TickMs and ElectionMs are raft's heartbeat interval and election
	// timeout; default DefaultTickMs and DefaultElectionMs (half of etcd's:
	// members on loopback elect a new leader fast).
	TickMs, ElectionMs uint
	// BcryptCost is the cost of password hashing; default
	// DefaultBcryptCost, bcrypt's minimum (at etcd's default of 10 each
	// authentication takes seconds under the race detector).
	BcryptCost uint
	// QuotaBackendBytes is the backend's size quota; 0: etcd's default
	// (2 GiB).
	QuotaBackendBytes int64
	// SnapshotCount is the number of committed transactions that trigger a
	// snapshot; 0: etcd's default (10,000).
	SnapshotCount uint64
	// AutoCompactionMode ("periodic" or "revision") and
	// AutoCompactionRetention (a duration or a revision count) compact the
	// keyspace; empty: etcd's default (no automatic compaction).
	AutoCompactionMode, AutoCompactionRetention string
	// TLS makes the member serve its clients over TLS (https client URLs);
	// nil (the default): plain text.
	TLS *TLS
	// Logger receives etcd's logs; default zap.NewNop().
	Logger *zap.Logger
	// ReadyTimeout bounds Start's wait until the member serves; default
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// TLS is the client-facing TLS of a member.
type TLS struct {
	// CertFile and KeyFile are the server's certificate (valid for
	// 127.0.0.1) and key; CAFile holds the CA that client certificates
	// must chain to.
	CertFile, KeyFile, CAFile string
	// ClientCertAuth requires every client to present a certificate of
	// CAFile's CA; with auth enabled, etcd takes the user from its Common
	// Name when the client gives no user name.
	ClientCertAuth bool
}

// Etcd is a running (or closed) member.
type Etcd struct {
	cfg       Config
	e         *embed.Etcd
	closeOnce sync.Once
}

// Start runs a member and waits until it serves (for a member of a cluster:
// until the cluster has a leader), for at most cfg.ReadyTimeout. On error
// nothing is left running.
func Start(ctx context.Context, cfg Config) (*Etcd, error) {
	e, err := Launch(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ReadyTimeout)
	defer cancel()
	if err := e.WaitReady(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Launch runs a member without waiting until it serves: the members of a
// new cluster, or of one that lost its quorum, only become ready together.
// When its ports are still held for a moment by a stopped member's
// sockets, it tries again for a few seconds; when ports it chose itself
// were taken meanwhile, it chooses others.
func Launch(cfg Config) (*Etcd, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedetcd: Config.Dir is required")
	}
	cfg = withDefaults(cfg)
	ownPorts := cfg.ClientPort == 0 && cfg.PeerPort == 0 && cfg.InitialCluster == ""
	deadline := time.Now().Add(rebindTimeout)
	for {
		if err := cfg.choosePorts(); err != nil {
			return nil, err
		}
		e, err := embed.StartEtcd(cfg.embedConfig())
		if err == nil {
			return &Etcd{cfg: cfg, e: e}, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return nil, fmt.Errorf("embedetcd: start member %s (client port %d, peer port %d): %w",
				cfg.Name, cfg.ClientPort, cfg.PeerPort, err)
		}
		if ownPorts {
			cfg.ClientPort, cfg.PeerPort = 0, 0
			continue
		}
		time.Sleep(50 * time.Millisecond) // polling the kernel for the ports, nothing to wait on
	}
}

func withDefaults(cfg Config) Config {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.InitialClusterToken == "" {
		cfg.InitialClusterToken = DefaultClusterToken
	}
	if cfg.TickMs == 0 {
		cfg.TickMs = DefaultTickMs
	}
	if cfg.ElectionMs == 0 {
		cfg.ElectionMs = DefaultElectionMs
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = DefaultBcryptCost
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	return cfg
}

// choosePorts fills the ports left 0.
func (c *Config) choosePorts() error {
	if c.ClientPort != 0 && c.PeerPort != 0 {
		return nil
	}
	ports, err := FreePorts(2)
	if err != nil {
		return err
	}
	if c.ClientPort == 0 {
		c.ClientPort = ports[0]
	}
	if c.PeerPort == 0 {
		c.PeerPort = ports[1]
		if c.PeerPort == c.ClientPort {
			c.PeerPort = ports[0]
		}
	}
	return nil
}

// Endpoint returns the client address, 127.0.0.1:port, of the member cfg
// describes (its ports chosen).
func (c Config) Endpoint() string { return "127.0.0.1:" + strconv.Itoa(c.ClientPort) }

// ClientURL returns the member's client URL, https with TLS.
func (c Config) ClientURL() string {
	scheme := "http"
	if c.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.Endpoint()
}

// PeerURL returns the member's peer URL, for InitialCluster.
func (c Config) PeerURL() string { return "http://127.0.0.1:" + strconv.Itoa(c.PeerPort) }

func (c Config) embedConfig() *embed.Config {
	ec := embed.NewConfig()
	ec.Name = c.Name
	ec.Dir = c.Dir
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(c.Logger)
	cu := url.URL{Scheme: "http", Host: c.Endpoint()}
	if c.TLS != nil {
		cu.Scheme = "https"
		ec.ClientTLSInfo.CertFile = c.TLS.CertFile
		ec.ClientTLSInfo.KeyFile = c.TLS.KeyFile
		ec.ClientTLSInfo.TrustedCAFile = c.TLS.CAFile
		ec.ClientTLSInfo.ClientCertAuth = c.TLS.ClientCertAuth
	}
	pu := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(c.PeerPort)}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	ec.InitialCluster = c.InitialCluster
	if ec.InitialCluster == "" {
		ec.InitialCluster = c.Name + "=" + pu.String()
	}
	ec.InitialClusterToken = c.InitialClusterToken
	ec.TickMs, ec.ElectionMs = c.TickMs, c.ElectionMs
	ec.BcryptCost = c.BcryptCost
	if c.QuotaBackendBytes != 0 {
		ec.QuotaBackendBytes = c.QuotaBackendBytes
	}
	if c.SnapshotCount != 0 {
		ec.SnapshotCount = c.SnapshotCount
	}
	if c.AutoCompactionMode != "" {
		ec.AutoCompactionMode = c.AutoCompactionMode
	}
	if c.AutoCompactionRetention != "" {
		ec.AutoCompactionRetention = c.AutoCompactionRetention
	}
	return ec
}

// Config returns the member's configuration with its defaults and ports
// filled in: Start(ctx, e.Config()) after Close starts it again on the same
// ports and data.
func (e *Etcd) Config() Config { return e.cfg }

// Endpoint returns the member's client address, 127.0.0.1:port.
func (e *Etcd) Endpoint() string { return e.cfg.Endpoint() }

// ClientURL returns the member's client URL, https with TLS.
func (e *Etcd) ClientURL() string { return e.cfg.ClientURL() }

// PeerURL returns the member's peer URL.
func (e *Etcd) PeerURL() string { return e.cfg.PeerURL() }

// WaitReady waits until the member serves, fails or ctx ends.
func (e *Etcd) WaitReady(ctx context.Context) error {
	select {
	case <-e.e.Server.ReadyNotify():
		return nil
	case err := <-e.e.Err():
		if err == nil {
			err = errors.New("closed")
		}
		return fmt.Errorf("embedetcd: member %s: %w", e.cfg.Name, err)
	case <-ctx.Done():
		return fmt.Errorf("embedetcd: member %s not ready: %w", e.cfg.Name, context.Cause(ctx))
	}
}

// Err delivers the error that ends serving, if any; it is closed by Close.
func (e *Etcd) Err() <-chan error { return e.e.Err() }

// IsLeader reports whether the member serves and leads its cluster.
func (e *Etcd) IsLeader() bool {
	select {
	case <-e.e.Server.ReadyNotify():
	default:
		return false
	}
	select {
	case <-e.e.Server.StopNotify():
		return false
	default:
	}
	return e.e.Server.Leader() == e.e.Server.MemberID()
}

// Close stops the member and returns once it has let go of its ports and
// data and its goroutines have ended (its peers' idle HTTP connections end
// on their own timers); its data stays. Open client streams are served
// until etcd's request timeout (about 6 s with the default ElectionMs),
// unless Kill came first. Close is safe to call more than once.
func (e *Etcd) Close() {
	e.closeOnce.Do(func() {
		select {
		case <-e.e.Server.ReadyNotify():
		default:
			// A member that never served has no client servers that
			// embed.Etcd.Close could stop: it would wait for them
			// forever. Stopping the server first lets them go.
			e.e.Server.HardStop()
		}
		e.e.Close()
		<-e.e.Server.StopNotify()
	})
}

// Kill stops the member's server at once, as a crash would: it stops
// answering and its open streams end. Close must follow, to let go of its
// ports and data; it then does not wait for open streams.
func (e *Etcd) Kill() { e.e.Server.HardStop() }
