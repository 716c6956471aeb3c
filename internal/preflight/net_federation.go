package preflight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/federation"
)

// violationGrace is how long a subscription that passed the flush may
// still be refused: the engine answers -ERR before the PONG, so this only
// covers a slow error callback.
const violationGrace = 200 * time.Millisecond

// federationRole: a federation broker works only where the network brokers
// of both sides give its certificate the federation role. Without it they
// treat it as a node, refuse its subscriptions and log one line, so a
// federation that worked under go-choria stops silently.
type federationRole struct{}

func (federationRole) Name() string { return "net.federation" }

func (federationRole) Run(ctx context.Context, env *Env) []Result {
	const wanted = "network brokers that give this certificate the federation role"
	if !env.Config.BrokerFederation {
		return []Result{{Status: Skip, Found: "plugin.choria.broker_federation is off", Wanted: wanted + ", on a federation broker"}}
	}
	m := loadMaterial(env)
	switch {
	case m.pair == nil:
		return []Result{{Status: Skip, Found: "the certificate or key did not load (see pki.files)", Wanted: wanted}}
	case m.caErr != nil:
		return []Result{{Status: Skip, Found: "the CA bundle did not load (see pki.files)", Wanted: wanted}}
	}
	lookup := func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
		srvs, err := env.Sys.LookupSRV(ctx, service, proto, name)
		return "", srvs, err
	}
	var out []Result
	for _, n := range federation.Networks(ctx, env.Config, lookup) {
		if n.Err != nil {
			out = append(out, Result{Item: n.Side, Status: Fail, Found: n.Err.Error(), Wanted: wanted + " on the " + n.Side + " network",
				Fix: "set " + n.Setting + " to that network's brokers (host:port, comma separated)"})
			continue
		}
		out = append(out, atOnce(n.Servers, func(url string) Result { return checkFederationRole(ctx, env, m, n, url) })...)
	}
	return out
}

// checkFederationRole connects to one network broker as the federation
// broker does and subscribes where it must. Only a subscription is tried:
// a publish would reach the fleet.
func checkFederationRole(ctx context.Context, env *Env, m *material, n federation.Network, url string) Result {
	name := m.leaf().Subject.CommonName
	res := Result{Item: n.Side + " " + url, Wanted: fmt.Sprintf("%s lets %s subscribe to %s (the federation role)", url, name, n.Subject)}
	listFix := fmt.Sprintf("on the %s network's brokers (%s), add %s to plugin.choria.network.federation_brokers and restart them: they treat %s as a node until it is listed",
		n.Side, n.Setting, authz.ExactPattern(name), name)

	d := &recordingDialer{ctx: ctx, sys: env.Sys}
	asyncErrs := make(chan error, 4)
	nc, err := nats.Connect(url,
		nats.Name("choria-broker preflight"),
		nats.Secure(clientTLS(m)),
		nats.Timeout(dialTimeout),
		nats.NoReconnect(),
		nats.SetCustomDialer(d),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case asyncErrs <- err:
			default:
			}
		}),
	)
	if err != nil {
		f := connectFailure(url, err, d.lastErr(), m.pair != nil, name)
		if f.fix == "" {
			f.fix = listFix
		}
		if d.lastErr() != nil {
			f.fix += ", or correct " + n.Setting
		}
		res.Status, res.Found, res.Fix = Fail, f.reason, f.fix
		return res
	}
	defer nc.Close()
	server := nc.ConnectedServerName()
	sub, err := nc.SubscribeSync(n.Subject)
	if err == nil {
		err = nc.FlushTimeout(infoTimeout)
	}
	if err == nil {
		err = nc.LastError()
	}
	if err == nil {
		select {
		case err = <-asyncErrs:
		case <-time.After(violationGrace):
		}
	}
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	switch {
	case err == nil:
		res.Status, res.Found = Pass, fmt.Sprintf("%s (%s) lets %s subscribe to %s", url, server, name, n.Subject)
	case errors.Is(err, nats.ErrPermissionViolation):
		res.Status = Fail
		res.Found = fmt.Sprintf("%s (%s) refuses %s the subscription to %s: it does not give this certificate the federation role", url, server, name, n.Subject)
		res.Fix = listFix
	default:
		res.Status, res.Found = Fail, fmt.Sprintf("%s (%s): subscribing to %s failed: %v", url, server, n.Subject, err)
		res.Fix = "check the broker's log at " + url + " for this connection"
	}
	return res
}

// clientTLS is what the federation broker presents to a network broker.
func clientTLS(m *material) *tls.Config {
	roots := x509.NewCertPool()
	for _, c := range m.cas {
		roots.AddCert(c)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*m.pair.TLS()}, MinVersion: tls.VersionTLS12}
}

// connectFailure says why a connection failed and how to fix it; an
// empty fix is for the caller to fill in. nats.go reports a failed dial
// only as "no servers available", so the dialer keeps the cause.
func connectFailure(url string, err, dialErr error, haveCert bool, name string) *probeFailure {
	switch {
	case dialErr != nil:
		return &probeFailure{reason: "cannot connect to " + url + ": " + dialReason(dialErr),
			fix: "start the broker there or open its client port to this host"}
	case strings.Contains(strings.ToLower(err.Error()), "authorization violation"):
		// A node under plugin.choria.network.deny_server_connections.
		return &probeFailure{reason: url + " refuses the connection of " + name + ": it treats it as a node and refuses nodes (plugin.choria.network.deny_server_connections)"}
	}
	if f := remoteRefusal(err, url, haveCert, brokerKind); f != nil {
		return f
	}
	var ne net.Error
	if errors.Is(err, nats.ErrTimeout) || errors.As(err, &ne) && ne.Timeout() {
		return &probeFailure{reason: fmt.Sprintf("%s accepted the connection but did not complete the TLS and NATS handshake within %s: %v", url, dialTimeout, err),
			fix: "check that " + url + " is a choria-broker or NATS client port, not another service or a stuck broker"}
	}
	return &probeFailure{reason: "cannot connect to " + url + ": " + err.Error(),
		fix: "check that " + url + " is a choria-broker or NATS client port with TLS whose certificate our CA signed"}
}

// recordingDialer dials through System with the check's context and
// bound, and remembers the last failure.
type recordingDialer struct {
	ctx context.Context
	sys System
	mu  sync.Mutex
	err error
}

func (d *recordingDialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, dialTimeout)
	defer cancel()
	c, err := d.dial(ctx, network, addr)
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
	return c, err
}

// dial resolves through System too, as net.peers does.
func (d *recordingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) != nil {
		return d.sys.Dial(ctx, network, addr)
	}
	ips, err := d.sys.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s has no address", host)
	}
	return d.sys.Dial(ctx, network, net.JoinHostPort(ips[0], port))
}

func (d *recordingDialer) lastErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}
