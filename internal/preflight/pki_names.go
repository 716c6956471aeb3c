package preflight

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// pkiNames: TLS clients and peers check that the certificate names the
// host they dialled, so every name the broker is reached by must be on it.
type pkiNames struct{}

func (pkiNames) Name() string { return "pki.names" }

func (pkiNames) Run(ctx context.Context, env *Env) []Result {
	m := loadMaterial(env)
	leaf := m.leaf()
	if leaf == nil {
		return []Result{skipNoCert("a certificate naming the identity")}
	}
	names := strings.Join(pki.Names(leaf), ", ")
	cover := func(item, name, who, fix string) Result {
		res := Result{Item: item, Status: Pass, Wanted: fmt.Sprintf("%q on the certificate (%s)", name, who),
			Found: fmt.Sprintf("%s covers %s", leaf.Subject, name)}
		if !pki.CoversName(leaf, name) {
			res.Status, res.Fix = Fail, fix
			res.Found = fmt.Sprintf("certificate names %s do not include %s", names, name)
		}
		return res
	}
	reissue := func(name string) string {
		return fmt.Sprintf("issue the broker a certificate that names %s (Puppet: dns_alt_names = %s in puppet.conf before the certificate request)", name, name)
	}

	c := env.Config
	out := []Result{cover("identity", c.Identity, "the broker refuses to start otherwise",
		fmt.Sprintf("set identity to one of %s, or %s", names, reissue(c.Identity)))}
	if host := publicHost(c.Network.PublicURL); host != "" {
		out = append(out, cover("public_url", host, "clients dial it", reissue(host)+", or set public_url to one of "+names))
	}
	peers, _, err := clusterPeers(ctx, env, leaf)
	if err != nil || len(peers) == 0 {
		return out // net.peers and net.srv report why
	}
	self := 0
	for _, p := range peers {
		if p.self {
			self++
			out = append(out, cover("peers", p.host, "peers dial this broker by it", reissue(p.host)))
		}
	}
	if self == 0 {
		out = append(out, Result{Item: "peers", Status: Warn,
			Found:  "no peer entry is this broker (by identity, certificate name or local address on port " + fmt.Sprint(c.Network.PeerPort) + ")",
			Wanted: "this broker in the peers list, under a name its certificate covers",
			Fix:    fmt.Sprintf("list every member on every member, this one as %s", net.JoinHostPort(c.Identity, fmt.Sprint(c.Network.PeerPort)))})
	}
	if c.Network.PeerTLS {
		out = append(out, routeAccepted(env, leaf, peers))
	}
	return out
}

// routeAccepted: members take routes only from certificates that name one
// of their peers or match their cluster_brokers. With the same settings on
// every member, this broker's own certificate must pass that rule.
func routeAccepted(env *Env, leaf *x509.Certificate, peers []peer) Result {
	const setting = "plugin.choria.network.cluster_brokers"
	c := env.Config
	res := Result{Item: "routes", Wanted: "a certificate name in peers or matching " + setting + ": members take routes from no other certificate"}
	patterns, err := pki.CompilePatterns(setting, c.Network.ClusterBrokers)
	if err != nil {
		res.Status, res.Found, res.Fix = Fail, err.Error(), "correct the pattern"
		return res
	}
	rule := pki.PeerRule{Patterns: patterns, Setting: setting}
	for _, p := range peers {
		rule.Hosts = append(rule.Hosts, p.host)
	}
	by, err := rule.Match(leaf)
	if err != nil {
		res.Status, res.Found = Fail, "peers will refuse this broker's routes: "+err.Error()
		res.Fix = fmt.Sprintf("list this broker in plugin.choria.network.peers on every member as %s, or add a pattern matching %s to %s on every member",
			net.JoinHostPort(c.Identity, fmt.Sprint(c.Network.PeerPort)), leaf.Subject.CommonName, setting)
		return res
	}
	res.Status, res.Found = Pass, fmt.Sprintf("%s is taken as a route by %s", leaf.Subject, by)
	return res
}

// publicHost is the host of host:port or nats://host:port.
func publicHost(s string) string {
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Host
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return ""
	}
	return host
}
