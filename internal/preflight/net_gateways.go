package preflight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// gateways: a super-cluster forms only when every remote cluster's
// gateways resolve, answer on their gateway port under the name they are
// listed as, take this broker's certificate, and present one this broker
// takes: from the CA (or the remote's tls.ca), naming the host dialled,
// and a gateway by plugin.choria.network.gateway_brokers or the urls.
type gateways struct{}

func (gateways) Name() string { return "net.gateways" }

func (gateways) Run(ctx context.Context, env *Env) []Result {
	n := env.Config.Network
	if n.GatewayPort == 0 {
		return []Result{{Status: Skip, Found: "plugin.choria.network.gateway_port = 0: no gateways", Wanted: "remote clusters that answer, with gateways on"}}
	}
	m := loadMaterial(env)
	rule, err := gatewayRule(n)
	if err != nil {
		return []Result{{Status: Fail, Found: err.Error(), Wanted: "valid patterns", Fix: "correct plugin.choria.network.gateway_brokers"}}
	}
	var out []Result
	if leaf := m.leaf(); leaf != nil {
		res := Result{Item: "this broker", Status: Pass, Wanted: "its certificate is a gateway by this broker's own urls and gateway_brokers, as other clusters configured alike will judge it"}
		if how, err := rule.Match(leaf); err != nil {
			res.Status, res.Found = Warn, err.Error()
			res.Fix = "list this broker in the other clusters' gateway_remote.NAME.urls by a name its certificate carries, or match it in plugin.choria.network.gateway_brokers everywhere"
		} else {
			res.Found = fmt.Sprintf("%s is a gateway by %s", leaf.Subject, how)
		}
		out = append(out, res)
	}
	if len(n.Gateways) == 0 {
		res := Result{Item: "remotes", Status: Pass, Wanted: "gateways this port admits",
			Found: "no remotes: accepts gateways whose certificate matches plugin.choria.network.gateway_brokers (" + strings.Join(n.GatewayBrokers, ", ") + ")"}
		if len(n.GatewayBrokers) == 0 {
			res.Status, res.Found = Warn, "no remotes and no plugin.choria.network.gateway_brokers: every gateway is refused"
			res.Fix = "set gateway_brokers to a pattern of the other clusters' gateway certificate names, or list the remote clusters in gateway_remotes"
		}
		return append(out, res)
	}
	type job struct {
		remote config.GatewayRemote
		url    string
	}
	var jobs []job
	for _, r := range n.Gateways {
		for _, u := range r.URLs {
			jobs = append(jobs, job{r, u})
		}
	}
	return append(out, atOnce(jobs, func(j job) Result { return checkGateway(ctx, env, m, j.remote, j.url) })...)
}

// gatewayRule is who the broker takes as a gateway (broker/gateway.go).
func gatewayRule(n config.Network) (pki.PeerRule, error) {
	patterns, err := pki.CompilePatterns("plugin.choria.network.gateway_brokers", n.GatewayBrokers)
	if err != nil {
		return pki.PeerRule{}, err
	}
	var hosts []string
	for _, r := range n.Gateways {
		for _, s := range r.URLs {
			if u, err := url.Parse(s); err == nil {
				hosts = append(hosts, u.Hostname())
			}
		}
	}
	slices.Sort(hosts)
	return pki.PeerRule{Hosts: slices.Compact(hosts), Patterns: patterns, Setting: "plugin.choria.network.gateway_brokers",
		Reason: pki.NotGateway, What: "a host of the gateway remotes' urls"}, nil
}

func checkGateway(ctx context.Context, env *Env, m *material, r config.GatewayRemote, raw string) Result {
	u, _ := url.Parse(raw) // config checked it
	host, port := u.Hostname(), u.Port()
	key := "plugin.choria.network.gateway_remote." + r.Name + "."
	res := Result{Item: r.Name + " " + u.Host,
		Wanted: fmt.Sprintf("resolves, answers mutual TLS on port %s as cluster %s, with a certificate from our CA naming %s, and takes ours", port, r.Name, host)}
	if r.TLS.Disable {
		res.Wanted = fmt.Sprintf("resolves, answers in plaintext on port %s as cluster %s (tls.disable)", port, r.Name)
	}
	ip := host
	if net.ParseIP(host) == nil {
		lctx, cancel := context.WithTimeout(ctx, dialTimeout)
		addrs, err := env.Sys.LookupHost(lctx, host)
		cancel()
		if err != nil || len(addrs) == 0 {
			res.Status, res.Found = Fail, fmt.Sprintf("%s does not resolve: %v", host, err)
			res.Fix = "add " + host + " to DNS (or /etc/hosts), or list the gateway by address in " + key + "urls"
			return res
		}
		ip = addrs[0]
	}
	addr := net.JoinHostPort(ip, port)
	info, leaf, fail := probeGateway(ctx, env, m, r, addr, host)
	if fail != nil {
		res.Status, res.Found, res.Fix = Fail, fail.reason, fail.fix
		return res
	}
	c := env.Config
	switch {
	case info.Gateway == "":
		res.Status, res.Found = Fail, addr+" is not a gateway port (its INFO names no gateway)"
		res.Fix = "set " + key + "urls to the remote cluster's gateway_port, not its client or cluster port"
	case info.Gateway == c.Network.ClusterName:
		res.Status, res.Found = Fail, fmt.Sprintf("%s answers as cluster %s, this cluster's own name", addr, info.Gateway)
		res.Fix = "every cluster of a super-cluster needs its own plugin.choria.network.gateway_name: set it on one of them (and in the other's gateway_remotes)"
	case info.Gateway != r.Name:
		res.Status, res.Found = Fail, fmt.Sprintf("%s answers as cluster %s, not %s", addr, info.Gateway, r.Name)
		res.Fix = fmt.Sprintf("list it as %s in gateway_remotes, or fix %surls", info.Gateway, key)
	case info.ServerName == c.Identity:
		res.Status, res.Found = Fail, fmt.Sprintf("%s answers with server name %s, this broker's identity", addr, info.ServerName)
		res.Fix = "every broker of a super-cluster needs its own identity (its server name): change identity on one of them"
	case r.TLS.Disable:
		res.Status, res.Found = Warn, fmt.Sprintf("%s answers in plaintext as cluster %s (%s): gateway traffic crosses in clear, and this broker's gateway port is plaintext too", addr, info.Gateway, info.ServerName)
		res.Fix = "give the remote TLS and remove " + key + "tls.disable once no old go-choria gateway remains"
	case r.TLS.SkipVerify:
		res.Status, res.Found = Warn, fmt.Sprintf("%s answers TLS as cluster %s (%s), its certificate not checked (tls.verify = false)", addr, info.Gateway, info.ServerName)
		res.Fix = "set " + key + "tls.verify = true, with tls.ca if the remote has another CA"
	default:
		res.Status = Pass
		res.Found = fmt.Sprintf("%s answers TLS as cluster %s (%s) with %s", addr, info.Gateway, info.ServerName, leaf.Subject)
	}
	return res
}

// probeGateway dials a remote gateway as the broker would and reads its
// INFO: plain for tls.disable, else mutual TLS with the broker's (or the
// remote's tls.cert) certificate, the answer checked as the broker does.
func probeGateway(ctx context.Context, env *Env, m *material, r config.GatewayRemote, addr, host string) (natsInfo, *x509.Certificate, *probeFailure) {
	key := "plugin.choria.network.gateway_remote." + r.Name + "."
	ctx, cancel := context.WithTimeout(ctx, dialTimeout+infoTimeout)
	defer cancel()
	raw, err := env.Sys.Dial(ctx, "tcp", addr)
	if err != nil {
		return natsInfo{}, nil, &probeFailure{reason: "cannot connect to " + addr + ": " + dialReason(err),
			fix: "start the remote cluster's broker there, or open TCP " + portOf(addr) + " between the clusters"}
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(dialTimeout + infoTimeout))
	if r.TLS.Disable {
		info, f := readInfo(raw, addr, true, gatewayKind)
		return info, nil, f
	}
	trust, own := m.trust(), m.pair
	caName := "our CA (" + m.files.CA + ")"
	if r.TLS.CA != "" {
		cas, err := pki.ReadCertificates(r.TLS.CA)
		if err != nil {
			return natsInfo{}, nil, &probeFailure{reason: key + "tls.ca: " + err.Error(), fix: "point " + key + "tls.ca at the remote cluster's CA bundle"}
		}
		trust, caName = pki.NewTrust(cas, nil), r.TLS.CA
	}
	if r.TLS.Cert != "" {
		if own, err = pki.LoadKeyPair(r.TLS.Cert, r.TLS.Key); err != nil {
			return natsInfo{}, nil, &probeFailure{reason: key + "tls.cert: " + err.Error(), fix: "point " + key + "tls.cert and tls.key at a certificate and its key"}
		}
	}
	if trust == nil {
		return natsInfo{}, nil, &probeFailure{reason: "the CA bundle did not load (see pki.files)", fix: "fix pki.files first"}
	}
	var refused error
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified below, as the broker does
		VerifyConnection: func(cs tls.ConnectionState) error {
			if r.TLS.SkipVerify {
				return nil
			}
			leaf := cs.PeerCertificates[0]
			// Naming the host dialled, a host of the urls, it is a gateway by the rule too.
			switch err := trust.VerifyServer(cs.PeerCertificates, env.Now); {
			case err != nil:
				refused = err
			case !pki.CoversName(leaf, host):
				refused = fmt.Errorf("certificate %s names %s, not %s", leaf.Subject, strings.Join(pki.Names(leaf), ", "), host)
			}
			return refused
		},
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	env.Config.Security.ApplyTLS(cfg)
	if own != nil {
		cfg.Certificates = []tls.Certificate{*own.TLS()}
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		switch {
		case refusal(refused) == pki.UnknownCA:
			return natsInfo{}, nil, &probeFailure{reason: addr + " presents a certificate from another CA than " + caName + ": " + refused.Error(),
				fix: "the remote's gateways need certificates from our CA, or set " + key + "tls.ca to its CA bundle"}
		case refused != nil:
			return natsInfo{}, nil, &probeFailure{reason: addr + " presents a certificate this broker would refuse: " + refused.Error(),
				fix: "issue the remote gateway a valid certificate from our CA that names " + host}
		case strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
			return natsInfo{}, nil, &probeFailure{reason: addr + " answers in plaintext: an old go-choria gateway, or a stock one without a tls block",
				fix: "give its gateway TLS, or set " + key + "tls.disable = true if you accept plaintext (README: Gateways)"}
		}
		if f := remoteRefusal(err, addr, own != nil, gatewayKind); f != nil {
			return natsInfo{}, nil, f
		}
		return natsInfo{}, nil, &probeFailure{reason: "TLS with " + addr + " failed: " + err.Error(),
			fix: "check that " + addr + " is the remote cluster's gateway port, with TLS"}
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	info, f := readInfo(conn, addr, own != nil, gatewayKind)
	if f != nil {
		return info, nil, f
	}
	return info, leaf, nil
}
