// Package fleet holds the tools that prove a broker with the real Choria
// protocol: an emulator of many Choria servers and a fleet ping client.
package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// Back-off tables as go-choria connectors use them: reconnects climb to
// 20 s, the initial connection to 5 s; each step is jittered.
var (
	reconnectSteps = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second, 8 * time.Second, 12 * time.Second, 16 * time.Second, 20 * time.Second}
	connectSteps   = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}
)

// backoff returns the jittered delay for attempt n (0-based), in [0.5, 1.5) of the step.
func backoff(steps []time.Duration, n int) time.Duration {
	if n < 0 {
		n = 0
	}
	if n >= len(steps) {
		n = len(steps) - 1
	}
	return time.Duration(float64(steps[n]) * (0.5 + rand.Float64()))
}

// ConnectTimeout is go-choria's default plugin.choria.network.connect_timeout.
const ConnectTimeout = 2 * time.Second

// ServerURLs normalises Choria middleware hosts (host:port or URLs) to URLs.
func ServerURLs(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if !strings.Contains(h, "://") {
			h = "nats://" + h
		}
		out = append(out, h)
	}
	return out
}

// GoChoriaCurves are the key exchanges go-choria's servers and clients
// offer (its tlssetup package): never the post-quantum hybrid that Go
// offers by default, whose key share costs both sides far more CPU.
var GoChoriaCurves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}

// TLSConfig is a Choria connector's TLS: its certificate, the CA, TLS 1.2+
// and go-choria's curve preferences.
func TLSConfig(kp *pki.KeyPair, cas []*x509.Certificate) *tls.Config {
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	c := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, CurvePreferences: GoChoriaCurves}
	if kp != nil {
		c.Certificates = []tls.Certificate{*kp.TLS()}
	}
	return c
}

// ConnOptions are a go-choria server's connection settings: infinite
// reconnects with a jittered 0.5-20 s back-off, a 2 s connect timeout and a
// deliberately tiny reconnect buffer.
func ConnOptions(name string, tc *tls.Config, extra ...nats.Option) []nats.Option {
	return append([]nats.Option{
		nats.Name(name),
		nats.Secure(tc),
		nats.Timeout(ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(10 * 1024),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return backoff(reconnectSteps, attempts-1) }),
	}, extra...)
}

// ConnectRetry makes the first connection, retrying forever with the 5 s
// back-off table until ctx ends, as go-choria does at start-up.
func ConnectRetry(ctx context.Context, servers []string, opts []nats.Option) (*nats.Conn, error) {
	for attempt := 0; ; attempt++ {
		nc, err := nats.Connect(strings.Join(servers, ","), opts...)
		if err == nil {
			return nc, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff(connectSteps, attempt)):
		}
	}
}

// ConnectedURL is the broker URL as Choria records it in seen-by hops,
// credentials removed.
func ConnectedURL(nc *nats.Conn) string {
	u, err := url.Parse(nc.ConnectedUrl())
	if err != nil {
		return ""
	}
	u.User = nil
	return u.String()
}

// Causes of a failed connection attempt, as the emulator counts them: the
// broker not listening, no answer within the timeout, or anything else
// (out of sockets or ports on the fleet's side).
const (
	CauseRefused = "refused"
	CauseTimeout = "timeout"
	CauseOther   = "other"
)

var dialCauses = []string{CauseRefused, CauseTimeout, CauseOther}

// dialCause classifies a failed dial.
func dialCause(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseRefused
	case errors.As(err, &ne) && ne.Timeout():
		return CauseTimeout
	default:
		return CauseOther
	}
}

// nodeDialer dials one emulated node's connections. nats.go leaves the
// socket of a failed reconnect attempt (a refused TLS handshake) to the
// garbage collector; a real node holds one such socket, but 10 000 nodes
// in one process run out of descriptors within seconds of a storm and
// then fail to dial at all. A node has one connection at a time, so the
// dialer closes the previous one when nats.go dials again.
type nodeDialer struct {
	d      net.Dialer
	mu     sync.Mutex
	last   net.Conn
	dials  *atomic.Uint64
	failed map[string]*atomic.Uint64
	// lastErr is the latest failed dial's error: nats.go reports only
	// "no servers available" when no dial of a first connection succeeded.
	lastErr error
}

func (n *nodeDialer) Dial(network, address string) (net.Conn, error) {
	n.mu.Lock()
	if n.last != nil {
		_ = n.last.Close()
		n.last = nil
	}
	n.mu.Unlock()
	n.dials.Add(1)
	c, err := n.d.Dial(network, address)
	if err != nil {
		n.failed[dialCause(err)].Add(1)
		n.mu.Lock()
		n.lastErr = err
		n.mu.Unlock()
		return nil, err
	}
	n.mu.Lock()
	n.last = c
	n.mu.Unlock()
	return c, nil
}
