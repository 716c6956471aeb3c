package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// Gateways join whole clusters into a super-cluster. A gateway link
// carries all traffic both ways, so, as with routes, being CA-signed is
// not enough: only certificates naming a host of a remote's urls, or
// matching plugin.choria.network.gateway_brokers, become gateways.

// gatewayState is what the broker keeps of its gateway configuration.
type gatewayState struct {
	on      bool
	plain   bool // the listener speaks plaintext (a remote has tls.disable)
	rule    pki.PeerRule
	remotes []string // configured remote cluster names
}

// Gateway refusal reasons besides the certificate's.
const (
	gatewayDuplicate = "duplicate server name"
	gatewayPlain     = "plaintext"
	gatewayNoTLS     = "no TLS handshake"
)

// gatewayRefusalReasons are the reasons a gateway is refused for, in output order.
var gatewayRefusalReasons = append(slices.Clone(refusalReasons), pki.NotGateway, gatewayDuplicate, gatewayPlain, gatewayNoTLS, routeOther)

// gatewaySetting names a gateway key for messages, with its file:line.
func (b *Broker) gatewaySetting(key string) string { return where(b.cfg, key) }

// gatewayOptions configures the engine's gateway when gateway_port is set.
func (b *Broker) gatewayOptions(opts *server.Options) error {
	n := b.cfg.Network
	if n.GatewayPort == 0 {
		return nil
	}
	patterns, err := pki.CompilePatterns("plugin.choria.network.gateway_brokers", n.GatewayBrokers)
	if err != nil {
		return err
	}
	var hosts, plain []string
	for _, r := range n.Gateways {
		if r.TLS.Disable {
			plain = append(plain, r.Name)
		}
		for _, s := range r.URLs {
			if u, err := url.Parse(s); err == nil {
				hosts = append(hosts, u.Hostname())
			}
		}
	}
	st := &b.gateway
	st.on, st.plain = true, len(plain) > 0
	slices.Sort(hosts)
	st.rule = pki.PeerRule{Hosts: slices.Compact(hosts), Patterns: patterns, Setting: "plugin.choria.network.gateway_brokers",
		Reason: pki.NotGateway, What: "a host of the gateway remotes' urls"}
	opts.Gateway = server.GatewayOpts{
		Name:        n.ClusterName,
		Host:        n.ListenAddress,
		Port:        n.GatewayPort,
		AuthTimeout: n.AuthTimeout.Seconds(),
		TLSTimeout:  n.TLSTimeout.Seconds(),
		// With TLS the certificate decides who is a gateway, and any
		// cluster name it gives is taken, so that clusters listing only a
		// hub still find each other (gossip) and a port without remotes
		// accepts gateways. Plaintext has no certificate: only the listed
		// names, as go-choria does.
		RejectUnknown: st.plain,
	}
	if ip := net.ParseIP(n.ListenAddress); ip != nil && ip.IsUnspecified() {
		// The engine would advertise the host's first address to the other
		// clusters, which certificates seldom name; the identity they do.
		opts.Gateway.Advertise = net.JoinHostPort(b.cfg.Identity, strconv.Itoa(n.GatewayPort))
	}
	if !st.plain {
		opts.Gateway.TLSConfig = b.gatewayTLSConfig(nil, "")
	} else {
		b.log.Warn(fmt.Sprintf("GATEWAY TLS IS OFF: %s makes gateway port %d plaintext for every cluster, as the engine has one TLS setting for its gateway listener. Any host that reaches the port and names a cluster of gateway_remotes (%s) joins the super-cluster and reads and sends all fleet traffic, unauthenticated and in clear. Remotes without tls.disable still dial out with mutual TLS, but their gateways must dial in here in plaintext. Use this only while an old go-choria gateway remains, and firewall the port to its hosts.",
			b.gatewaySetting("plugin.choria.network.gateway_remote."+plain[0]+".tls.disable"), n.GatewayPort, strings.Join(n.GatewayRemotes, ", ")))
	}
	for _, r := range n.Gateways {
		rgo := &server.RemoteGatewayOpts{Name: r.Name, TLSTimeout: n.TLSTimeout.Seconds()}
		for _, s := range r.URLs {
			u, err := url.Parse(s)
			if err != nil {
				return fmt.Errorf("%s: %w", b.gatewaySetting("plugin.choria.network.gateway_remote."+r.Name+".urls"), err)
			}
			rgo.URLs = append(rgo.URLs, u)
		}
		if !r.TLS.Disable {
			// Explicit even when the listener has TLS: a remote's own
			// certificate or CA, and refusals that name the remote.
			if rgo.TLSConfig, err = b.remoteGatewayTLS(r.Name, r.TLS); err != nil {
				return err
			}
		}
		st.remotes = append(st.remotes, r.Name)
		opts.Gateway.Gateways = append(opts.Gateway.Gateways, rgo)
	}
	if _, err := st.rule.Match(b.cert.Load().Leaf); err != nil && !st.plain {
		b.log.Warn("the other clusters' gateways, with the same remotes and gateway_brokers as this one, will refuse this broker: list it in their gateway_remote.NAME.urls by a name its certificate carries, or match it in plugin.choria.network.gateway_brokers", "error", err)
	}
	switch {
	case len(n.Gateways) == 0 && len(patterns) == 0:
		b.log.Warn("gateway port without remotes nor plugin.choria.network.gateway_brokers: no certificate is a gateway, so every gateway is refused; set gateway_brokers to a pattern of the other clusters' gateway certificate names", "port", n.GatewayPort)
	case len(n.Gateways) == 0:
		b.log.Info("gateway port without remotes: accepting gateways of other clusters whose certificate matches plugin.choria.network.gateway_brokers", "port", n.GatewayPort, "cluster", n.ClusterName)
	}
	return nil
}

// gatewayStreamsAlone: with a gateway the engine runs JetStream as a
// cluster across the super-cluster, which it refuses to start without
// routes to other members of its own cluster.
func gatewayStreamsAlone(cfg *config.Config) error {
	return fmt.Errorf("%s with %s needs cluster peers: with gateways the engine runs Choria Streams as one JetStream cluster across the super-cluster, and refuses to start it on a broker without routes to other members of its cluster; list them in plugin.choria.network.peers, or turn Streams off on this broker",
		where(cfg, "plugin.choria.network.stream.store"), where(cfg, "plugin.choria.network.gateway_port"))
}

// where names key with the file:line that set it.
func where(cfg *config.Config, key string) string {
	if w := cfg.Where(key); w != "" {
		return key + " (" + w + ")"
	}
	return key
}

// remoteGatewayTLS is the TLS configuration for dialling remote name: the
// broker's own unless tls.cert/key or tls.ca say otherwise.
func (b *Broker) remoteGatewayTLS(name string, rt config.RemoteTLS) (*tls.Config, error) {
	key := "plugin.choria.network.gateway_remote." + name + ".tls."
	var own *tls.Certificate
	if rt.Cert != "" {
		kp, err := pki.LoadKeyPair(rt.Cert, rt.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.gatewaySetting(key+"cert"), err)
		}
		own = kp.TLS()
	}
	var trust *pki.Trust
	if rt.CA != "" {
		cas, err := pki.ReadCertificates(rt.CA)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.gatewaySetting(key+"ca"), err)
		}
		trust = pki.NewTrust(cas, nil)
		b.log.Info("gateway remote's certificates are checked against its own CA bundle, without a CRL; its gateways dialling in are still checked against this broker's CA and CRL",
			"remote", name, "setting", b.gatewaySetting(key+"ca"))
	}
	tc := b.gatewayTLSConfig(trust, name)
	if own != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return own, nil }
	}
	if rt.SkipVerify {
		b.log.Warn(fmt.Sprintf("GATEWAY CERTIFICATE NOT CHECKED: %s: the certificate of cluster %s's gateways is not verified, so anyone on the path can pose as %s and read the fleet traffic sent to it. Set it to true, with tls.ca if %s has another CA.",
			b.gatewaySetting(key+"verify"), name, name, name))
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = nil
	}
	return tc, nil
}

// gatewayTLSConfig is mutual TLS for gateways with the broker's
// certificate, CA and CRL, as routes have (routeTLSConfig): the listener
// admits a certificate only if gateway.rule does, and dialling out, the
// remote's certificate must name the host dialled and pass the rule too.
// trust, when set, replaces the CA bundle and CRL for dialling remote.
func (b *Broker) gatewayTLSConfig(trust *pki.Trust, remote string) *tls.Config {
	cas := b.trust.Load().CAs
	if trust != nil {
		cas = trust.CAs
	}
	return b.linkTLSConfig(cas, func(cs tls.ConnectionState) error {
		t := trust
		if t == nil {
			t = b.trust.Load() // reloads apply to the next link
		}
		err := t.VerifyServer(cs.PeerCertificates, time.Now())
		if err == nil {
			_, err = b.gateway.rule.Match(cs.PeerCertificates[0])
		}
		if err != nil {
			extra := []any{}
			if remote != "" {
				extra = append(extra, "cluster", remote)
			}
			return b.refuseLink(limitGateways, b.gatewaysRefused, "gateway", cs.ServerName, err, extra...)
		}
		return nil
	}, b.admitGateway)
}

// admitGateway checks a gateway dialling our gateway port.
func (b *Broker) admitGateway(addr string, cs tls.ConnectionState) error {
	err := b.trust.Load().VerifyClient(cs.PeerCertificates, time.Now())
	if err == nil {
		_, err = b.gateway.rule.Match(cs.PeerCertificates[0])
	}
	if err == nil {
		return nil
	}
	return b.refuseLink(limitGateways, b.gatewaysRefused, "remote", addr, err)
}

// Engine lines about gateways that say less than an operator needs.
var (
	gatewayLineRe   = regexp.MustCompile(`^(\S+) - gid:\d+ - (?:"([^"]*)" - )?(.*)$`)
	duplicateNameRe = regexp.MustCompile(`^Remote server has a duplicate name: "([^"]*)"`)
)

// explainGateway turns the engine's gateway lines about duplicate server
// names and peers without TLS into what to fix, once a minute per peer,
// and counts them. It returns false when it handled the line.
func (b *Broker) explainGateway(msg string) bool {
	if !strings.Contains(msg, " - gid:") {
		return true
	}
	m := gatewayLineRe.FindStringSubmatch(msg)
	if m == nil {
		return true
	}
	remote, text := m[1], m[3]
	attrs := []any{"remote", remote}
	if m[2] != "" {
		attrs = append(attrs, "cluster", m[2])
	}
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	var reason, line string
	var level slog.Level = slog.LevelWarn
	switch {
	case duplicateNameRe.MatchString(text):
		name := duplicateNameRe.FindStringSubmatch(text)[1]
		reason, host, level = gatewayDuplicate, name, slog.LevelError
		line = fmt.Sprintf("gateway refused: server name %q is used in this cluster and again in the cluster across this gateway link. Every broker of a super-cluster needs its own server name, which is its identity: change identity on one of them (and give it a certificate naming the new identity)", name)
		attrs = append(attrs, "setting", "identity")
	case strings.HasPrefix(text, "TLS gateway handshake error: tls: first record does not look like a TLS handshake"):
		// We dialled, and it answered in plaintext.
		reason = gatewayPlain
		line = "gateway refused: the remote gateway speaks plaintext, this one mutual TLS. An old go-choria gateway has no TLS: set plugin.choria.network.gateway_remote.NAME.tls.disable = true for it only if you accept plaintext (see the warning that gives); otherwise give it TLS"
	case strings.HasPrefix(text, "TLS gateway handshake error:") && strings.HasSuffix(text, "i/o timeout"):
		// It dialled us and said nothing: a plaintext gateway waits for an
		// INFO that this port sends only after TLS.
		reason = gatewayNoTLS
		line = "gateway refused: the remote sent no TLS handshake within plugin.choria.network.tls_timeout. A plaintext gateway (an old go-choria one) waits in silence like this; set plugin.choria.network.gateway_remote.NAME.tls.disable = true for it only if you accept plaintext, otherwise give it TLS. A slow or overloaded link does the same."
	case strings.HasPrefix(text, "TLS gateway handshake error: tls: failed to verify certificate: "):
		// We dialled; Go's check of the chain and host name failed before ours.
		reason = string(pki.Invalid)
		if strings.Contains(text, "unknown authority") {
			reason = string(pki.UnknownCA)
		}
		line = "gateway refused: the remote gateway's certificate does not verify against the CA bundle, or does not name the host dialled; give it a certificate from our CA naming the host in gateway_remote.NAME.urls (or set that remote's tls.ca to its CA)"
		attrs = append(attrs, "detail", strings.TrimPrefix(text, "TLS gateway handshake error: tls: failed to verify certificate: "))
	case strings.HasPrefix(text, "TLS gateway handshake error: remote error: tls: "):
		// The other end refused our certificate; not a refusal of ours.
		if b.peerLog.allow(limitGateways+" remote "+host) && b.limiter.allow(limitGateways, "refused by the remote") {
			b.log.Warn("gateway link refused by the remote gateway: it does not take this broker's certificate. It must trust our CA (a stock nats-server: its gateway tls ca_file), not have revoked the certificate, and take it as a gateway: a choria-broker by naming a host of this certificate in its gateway_remote.NAME.urls, or by a plugin.choria.network.gateway_brokers pattern",
				append(attrs, "error", strings.TrimPrefix(text, "TLS gateway handshake error: "))...)
		}
		return false
	default:
		return true
	}
	b.gatewaysRefused.add(reason)
	if b.peerLog.allow(limitGateways+" "+reason+" "+host) && b.limiter.allow(limitGateways, reason) {
		b.log.Log(context.Background(), level, line, append(attrs, "reason", reason)...)
	}
	return false
}

// watchGateways says, while a configured remote cluster has no link,
// which ones are missing, so that a super-cluster that cannot form is noticed.
func (b *Broker) watchGateways(ctx context.Context, first, every time.Duration) {
	if len(b.gateway.remotes) == 0 {
		return
	}
	watchLinks(ctx, first, every, func() bool {
		var down []string
		for _, l := range b.GatewayStatus().Links {
			if l.Configured && l.Outbound == nil {
				down = append(down, l.Cluster)
			}
		}
		if len(down) == 0 {
			return false
		}
		b.log.Warn("gateway link down: no link to these remote clusters; the gateway errors logged above say why (unreachable, certificate refused, plaintext against TLS, duplicate server name)",
			"clusters", strings.Join(down, ","))
		return true
	}, func() { b.log.Info("gateways complete", "clusters", strings.Join(b.gateway.remotes, ",")) })
}
