package preflight

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// infoTimeout bounds the wait for a NATS INFO line after connecting.
const infoTimeout = 2 * time.Second

// natsInfo is what preflight reads from the INFO a NATS port sends first.
type natsInfo struct {
	ServerName  string `json:"server_name"`
	Gateway     string `json:"gateway"` // the cluster name, on a gateway port
	ServerID    string `json:"server_id"`
	Version     string `json:"version"`
	Cluster     string `json:"cluster"`      // leafnode ports: the hub's cluster name
	Domain      string `json:"domain"`       // leafnode ports: the hub's JetStream domain
	TLSRequired bool   `json:"tls_required"` // TLS follows the INFO
}

// probeFailure is why a port did not answer as a peer should, and the fix.
type probeFailure struct {
	reason string
	fix    string
}

func (f *probeFailure) Error() string { return f.reason }

// routeProbe is what a cluster port answered.
type routeProbe struct {
	leaf *x509.Certificate // nil without TLS
	info natsInfo
}

// probeRoute connects to a cluster port as a peer does: mutual TLS with
// this broker's certificate (unless route TLS is off), the answer checked
// against our CA and CRL and the name dialled, then the route INFO.
func probeRoute(ctx context.Context, env *Env, m *material, addr, host string) (*routeProbe, *probeFailure) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout+infoTimeout)
	defer cancel()
	raw, err := env.Sys.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, &probeFailure{reason: "cannot connect to " + addr + ": " + dialReason(err),
			fix: "start the broker there, or open TCP " + portOf(addr) + " between the cluster members"}
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(dialTimeout + infoTimeout))
	if !env.Config.Network.PeerTLS {
		info, f := readInfo(raw, addr, true, brokerKind)
		if f != nil {
			return nil, f
		}
		return &routeProbe{info: info}, nil
	}
	trust := m.trust()
	if trust == nil {
		return nil, &probeFailure{reason: "the CA bundle did not load (see pki.files)", fix: "fix pki.files first"}
	}
	var refused error
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified below against our CA and CRL, as the broker does
		VerifyConnection:   verifyServerAt(trust, env.Now, host, &refused),
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	if m.pair != nil {
		cfg.Certificates = []tls.Certificate{*m.pair.TLS()}
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		switch {
		case refused != nil && refusal(refused) == pki.UnknownCA:
			return nil, &probeFailure{reason: addr + " presents a certificate from another CA: " + refused.Error(),
				fix: "the peer must run with a certificate from our CA (" + m.files.CA + "); check what listens on " + addr}
		case refused != nil:
			return nil, &probeFailure{reason: addr + " presents a certificate we refuse: " + refused.Error(),
				fix: "issue the peer a valid certificate from our CA that names " + host}
		}
		if f := remoteRefusal(err, addr, m.pair != nil, brokerKind); f != nil {
			return nil, f
		}
		return nil, &probeFailure{reason: "TLS with " + addr + " failed: " + err.Error(),
			fix: "check that " + addr + " is a choria-broker cluster port with route TLS on (plugin.choria.network.peer_tls)"}
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	info, f := readInfo(conn, addr, m.pair != nil, brokerKind)
	if f != nil {
		return nil, f
	}
	return &routeProbe{leaf: leaf, info: info}, nil
}

// portKind is what a probed port is, for the fixes its failures name.
type portKind struct {
	what       string // what the port should be
	refusedFix string // what to do when it refuses our certificate
}

var (
	brokerKind = portKind{what: "a choria-broker or nats-server port",
		refusedFix: "the peer does not trust our CA, has revoked our certificate, or finds none of its names in its peers or cluster_brokers: give both the same CA bundle and CRL, and the same peers list naming this broker as its certificate does"}
	gatewayKind = portKind{what: "the remote cluster's gateway port",
		refusedFix: "the remote gateway does not trust our CA, has revoked our certificate, or does not take it as a gateway: its gateway_remote.NAME.urls must name this broker as its certificate does, or its gateway_brokers match it (a stock nats-server: its gateway tls block's ca_file must hold our CA)"}
)

// readInfo reads the INFO line a NATS port of kind k sends first. With
// mutual TLS, a peer that refuses our certificate says so here, after the
// handshake (TLS 1.3).
func readInfo(c net.Conn, addr string, haveCert bool, k portKind) (natsInfo, *probeFailure) {
	c.SetReadDeadline(time.Now().Add(infoTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	var info natsInfo
	if err != nil {
		if f := remoteRefusal(err, addr, haveCert, k); f != nil {
			return info, f
		}
		return info, &probeFailure{reason: addr + " sent no NATS INFO within " + infoTimeout.String() + ": " + err.Error(),
			fix: "check that " + addr + " is " + k.what}
	}
	return parseInfo(line, addr)
}

// parseInfo reads an INFO line.
func parseInfo(line, addr string) (natsInfo, *probeFailure) {
	var info natsInfo
	body, ok := strings.CutPrefix(strings.TrimSpace(line), "INFO ")
	if !ok || json.Unmarshal([]byte(body), &info) != nil {
		return info, &probeFailure{reason: fmt.Sprintf("%s answered %.40q, not a NATS INFO", addr, line),
			fix: "check that " + addr + " is a choria-broker or nats-server port"}
	}
	return info, nil
}

// remoteRefusal is the peer, a port of kind k, refusing our certificate
// with a TLS alert: during the handshake (TLS 1.2) or on the first read
// (TLS 1.3).
func remoteRefusal(err error, addr string, haveCert bool, k portKind) *probeFailure {
	if !strings.Contains(err.Error(), "remote error: tls") {
		return nil
	}
	if !haveCert {
		return &probeFailure{reason: addr + " refused a connection without a certificate: this broker's own did not load (see pki.files)", fix: "fix pki.files first"}
	}
	return &probeFailure{reason: addr + " refused this broker's certificate (" + err.Error() + ")", fix: k.refusedFix}
}

// dialReason shortens a dial error to what an operator acts on.
func dialReason(err error) string {
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &op) && op.Timeout():
		return "timed out (host down, or a firewall drops the packets)"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused (nothing listens there: broker down or wrong port)"
	}
	return err.Error()
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// atOnce runs check on every item concurrently and returns the results in
// the items' order: probes mostly wait on the network.
func atOnce[T any](items []T, check func(T) Result) []Result {
	out := make([]Result, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { out[i] = check(it) })
	}
	wg.Wait()
	return out
}

// verifyServerAt checks a server certificate as the broker does: chained to
// trust with the CRL, and naming host. A refusal is also kept in *refused,
// as the TLS error that reaches the caller no longer says why.
func verifyServerAt(trust *pki.Trust, now time.Time, host string, refused *error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if err := trust.VerifyServer(cs.PeerCertificates, now); err != nil {
			*refused = err
			return err
		}
		if !pki.CoversName(cs.PeerCertificates[0], host) {
			*refused = fmt.Errorf("certificate %s names %s, not %s", cs.PeerCertificates[0].Subject, strings.Join(pki.Names(cs.PeerCertificates[0]), ", "), host)
			return *refused
		}
		return nil
	}
}
