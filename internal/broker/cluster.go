package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// peerSRV is the DNS SRV service Choria publishes broker peers under.
const peerSRV = "mcollective-broker"

// peerList is the configured peers, or those SRV records name when the
// list is empty and plugin.choria.use_srv is on.
func (b *Broker) peerList(ctx context.Context) ([]string, error) {
	n := b.cfg.Network
	if len(n.Peers) > 0 || !b.cfg.UseSRV {
		return n.Peers, nil
	}
	domain := b.cfg.SRVDomain
	if domain == "" {
		if i := strings.IndexByte(b.cfg.Identity, '.'); i > 0 {
			domain = b.cfg.Identity[i+1:]
		}
	}
	if domain == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, addrs, err := b.resolver.LookupSRV(ctx, peerSRV, "tcp", domain)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, nil // no SRV records: a single broker
		}
		// DNS trouble must not keep a broker down; it runs alone and says so.
		b.log.Warn("plugin.choria.use_srv: cannot look up cluster peers; running without a cluster until restarted", "srv", "_"+peerSRV+"._tcp."+domain, "error", err)
		return nil, nil
	}
	var peers []string
	for _, a := range addrs {
		peers = append(peers, net.JoinHostPort(strings.TrimSuffix(a.Target, "."), strconv.Itoa(int(a.Port))))
	}
	return peers, nil
}

// routeURLs turns peer entries (name, host:port or nats://host:port) into
// route URLs carrying the routes password, leaving this broker out.
func (b *Broker) routeURLs(peers []string) (routes []*url.URL, self []string, err error) {
	n := b.cfg.Network
	for _, entry := range peers {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		p, err := config.ParsePeer(entry, n.PeerPort)
		if err != nil {
			return nil, nil, err
		}
		if b.isSelf(p.Host, p.Port) {
			self = append(self, entry)
			continue
		}
		r := &url.URL{Scheme: "nats", Host: net.JoinHostPort(p.Host, strconv.Itoa(p.Port))}
		if n.PeerUser != "" || n.PeerPassword != "" {
			r.User = url.UserPassword(n.PeerUser, n.PeerPassword)
		}
		routes = append(routes, r)
	}
	return routes, self, nil
}

// isSelf recognises this broker in the shared peers list: its cluster
// port, under its identity, a name of its certificate, or its listen address.
func (b *Broker) isSelf(host string, port int) bool {
	if port != b.routePort() {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == strings.ToLower(b.cfg.Identity) {
		return true
	}
	for _, name := range pki.Names(b.cert.Load().Leaf) {
		if strings.ToLower(name) == host {
			return true
		}
	}
	listen := net.ParseIP(b.cfg.Network.ListenAddress)
	ip := net.ParseIP(host)
	return ip != nil && listen != nil && (ip.Equal(listen) || (listen.IsUnspecified() && isLocalIP(ip)))
}

// routePort is the cluster port; tests ask for a free one with 0.
func (b *Broker) routePort() int { return b.cfg.Network.PeerPort }

func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ip.IsLoopback()
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// clusterOptions configures the engine's routes when this broker has peers.
func (b *Broker) clusterOptions(ctx context.Context, opts *server.Options) error {
	peers, err := b.peerList(ctx)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		return nil
	}
	routes, self, err := b.routeURLs(peers)
	if err != nil {
		return err
	}
	n := b.cfg.Network
	if len(routes) == 0 {
		b.log.Warn("plugin.choria.network.peers names only this broker; running without a cluster", "peers", strings.Join(peers, ","))
		return nil
	}
	if len(self) == 0 {
		b.log.Warn("this broker is not in plugin.choria.network.peers; list every member, this one included, on every member", "identity", b.cfg.Identity, "peers", strings.Join(peers, ","))
	}
	port := n.PeerPort
	if port == 0 {
		port = server.RANDOM_PORT
	}
	patterns, err := pki.CompilePatterns("plugin.choria.network.cluster_brokers", n.ClusterBrokers)
	if err != nil {
		return err
	}
	b.routeRule = pki.PeerRule{Hosts: peerHosts(peers, n.PeerPort), Patterns: patterns, Setting: "plugin.choria.network.cluster_brokers"}
	opts.Cluster = server.ClusterOpts{
		Name:       n.ClusterName,
		Host:       n.ListenAddress,
		Port:       port,
		Username:   n.PeerUser,
		Password:   n.PeerPassword,
		TLSTimeout: n.TLSTimeout.Seconds(),
		PoolSize:   -1, // one route per peer, as go-choria brokers run
	}
	if n.PeerTLS {
		opts.Cluster.TLSConfig = b.routeTLSConfig()
		if _, err := b.routeRule.Match(b.cert.Load().Leaf); err != nil {
			b.log.Warn("members with the same peers and cluster_brokers will refuse this broker's routes: list it in plugin.choria.network.peers by a name its certificate carries, or match it in plugin.choria.network.cluster_brokers", "error", err)
		}
	} else {
		b.log.Warn("ROUTE TLS IS OFF (plugin.choria.network.peer_tls = false): cluster traffic, fleet requests and replies included, crosses the network in clear and any host that reaches the cluster port can join. Use this only while old peers without TLS remain.")
	}
	opts.Routes = routes
	b.expectedPeers = len(routes)
	if opts.ClientAdvertise == "" {
		// Members gossip this to clients, so nodes that know one broker
		// fail over to the others.
		opts.ClientAdvertise = net.JoinHostPort(b.cfg.Identity, strconv.Itoa(n.ClientPort))
	}
	return nil
}

// peerHosts are the host names and addresses of the peers entries, this
// broker's included; routeURLs has already refused bad entries.
func peerHosts(peers []string, port int) []string {
	var hosts []string
	for _, entry := range peers {
		if p, err := config.ParsePeer(entry, port); err == nil {
			hosts = append(hosts, p.Host)
		}
	}
	return hosts
}

// routeTLSConfig is mutual TLS for routes with the same certificate, CA and
// CRL as clients. Both ways the peer must present a CA-signed, unrevoked
// certificate that names a peer or matches cluster_brokers (b.routeRule):
// every node has a CA-signed certificate, and a route reads all traffic.
// Dialling, the certificate must also name the host dialled (Go's check).
func (b *Broker) routeTLSConfig() *tls.Config {
	return b.linkTLSConfig(b.trust.Load().CAs, func(cs tls.ConnectionState) error {
		err := b.trust.Load().VerifyServer(cs.PeerCertificates, time.Now())
		if err == nil {
			_, err = b.routeRule.Match(cs.PeerCertificates[0])
		}
		if err != nil {
			return b.refusePeer("peer", cs.ServerName, err)
		}
		return nil
	}, b.admitPeer)
}

// linkTLSConfig is mutual TLS for a broker link (route, gateway) with this
// broker's certificate both ways. Dialling, Go checks that the remote's
// certificate chains to cas and names the host dialled, then verify
// decides; accepting, admit decides (admitTLS).
func (b *Broker) linkTLSConfig(cas []*x509.Certificate, verify func(tls.ConnectionState) error, admit func(remote string, cs tls.ConnectionState) error) *tls.Config {
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	return b.hardenTLS(&tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return b.cert.Load(), nil
		},
		VerifyConnection:   verify,
		GetConfigForClient: b.admitTLS(admit),
	})
}

// admitTLS gives each handshake on a broker link's port this broker's
// certificate and a check of the peer's by admit, which knows the peer's
// address so that a refusal says who.
func (b *Broker) admitTLS(admit func(remote string, cs tls.ConnectionState) error) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		remote := "unknown"
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		return b.hardenTLS(&tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*b.cert.Load()},
			ClientAuth:   tls.RequestClientCert,
			VerifyConnection: func(cs tls.ConnectionState) error {
				return admit(remote, cs)
			},
		}), nil
	}
}

// admitPeer checks a peer dialling our cluster port, as admit does clients.
func (b *Broker) admitPeer(remote string, cs tls.ConnectionState) error {
	err := b.trust.Load().VerifyClient(cs.PeerCertificates, time.Now())
	if err == nil {
		_, err = b.routeRule.Match(cs.PeerCertificates[0])
	}
	if err == nil {
		return nil
	}
	return b.refusePeer("remote", remote, err)
}

// refusePeer logs a refused route, once a minute per certificate and
// reason, and returns the handshake error; who is "remote" (it dialled
// us) or "peer" (we dialled it).
func (b *Broker) refusePeer(who, addr string, err error) error {
	return b.refuseLink(limitPeers, b.peersRefused, who, addr, err)
}

// refuseLink logs a refused broker link of kind (limitPeers, limitGateways)
// once a minute per certificate and reason, counts it, and returns the
// handshake error.
func (b *Broker) refuseLink(kind string, counts refusalCounts, who, addr string, err error, extra ...any) error {
	attrs := []any{who, addr, "error", err.Error()}
	key, reason := addr, routeOther
	if host, _, err := net.SplitHostPort(addr); err == nil {
		key = host // a peer's port changes with each try
	}
	if re, ok := err.(*pki.RefusedError); ok {
		attrs = []any{who, addr, "reason", string(re.Reason), "subject", re.Subject, "detail", re.Detail}
		key, reason = re.Subject+string(re.Reason), string(re.Reason)
	}
	counts.add(reason)
	// The throttle quiets one peer retrying; the limiter, many peers.
	if b.peerLog.allow(kind+" "+key) && b.limiter.allow(kind, reason) {
		b.log.Warn(kind, append(attrs, extra...)...)
	}
	return fmt.Errorf("%s: %w", admissionMarker, err)
}

// watchCluster says, while the cluster is incomplete, how many peers are
// connected and which, so that a cluster that cannot form is noticed.
func (b *Broker) watchCluster(ctx context.Context, first, every time.Duration) {
	if b.expectedPeers == 0 {
		return
	}
	var names []string
	watchLinks(ctx, first, every, func() bool {
		if names = b.routeNames(); len(names) >= b.expectedPeers {
			return false
		}
		b.log.Warn("cluster incomplete: peers missing; the route errors logged above say why (unreachable, name does not resolve, certificate refused, wrong routes password)",
			"connected", len(names), "expected", b.expectedPeers, "peers", strings.Join(names, ","))
		return true
	}, func() { b.log.Info("cluster complete", "peers", strings.Join(names, ",")) })
}

// watchLinks calls missing after first and then every period until ctx
// ends; missing logs what is missing and says whether anything is. Each
// time nothing is missing any more (and at the first look), whole logs so.
func watchLinks(ctx context.Context, first, every time.Duration, missing func() bool, whole func()) {
	t := time.NewTimer(first)
	defer t.Stop()
	complete := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(every)
		switch {
		case missing():
			complete = false
		case !complete:
			complete = true
			whole()
		}
	}
}

// routeNames are the server names of the connected routes.
func (b *Broker) routeNames() []string {
	rz, err := b.srv.Routez(nil)
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range rz.Routes {
		names = append(names, r.RemoteName)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Routes is how many peers are connected.
func (b *Broker) Routes() int { return len(b.routeNames()) }

// ClusterAddr is the cluster listener's address, nil without a cluster.
func (b *Broker) ClusterAddr() *net.TCPAddr {
	if b.srv == nil {
		return nil
	}
	return b.srv.ClusterAddr()
}
