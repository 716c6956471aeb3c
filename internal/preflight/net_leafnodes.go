package preflight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// leafnodes: a leafnode link comes up only when the hub's name resolves,
// its leafnode port answers, its certificate passes our CA, CRL and the
// name dialled, it takes ours, and its cluster is named otherwise than
// this broker's. It dials each url of every remote, as the broker would,
// and closes before logging in.
type leafnodes struct{}

func (leafnodes) Name() string { return "net.leafnodes" }

// hubWait is how long a hub has to refuse our certificate after the TLS
// handshake (TLS 1.3 says so on the first read); silence is consent.
const hubWait = time.Second

func (leafnodes) Run(ctx context.Context, env *Env) []Result {
	c := env.Config
	const wanted = "remotes whose hubs answer and take this broker's certificate"
	remotes, err := c.LeafRemotes()
	if err == nil {
		err = c.LeafRemoteFiles(remotes)
	}
	switch {
	case err != nil:
		return []Result{{Status: Fail, Found: err.Error(), Wanted: wanted, Fix: "correct the settings named above (file:line: key); run stops with the same message"}}
	case len(remotes) == 0:
		return []Result{{Status: Skip, Found: "no plugin.choria.network.leafnode_remotes", Wanted: wanted}}
	}
	m := loadMaterial(env)
	type job struct {
		r config.LeafRemote
		u *url.URL
	}
	var jobs []job
	for _, r := range remotes {
		for _, u := range r.URLs {
			jobs = append(jobs, job{r, u})
		}
	}
	return atOnce(jobs, func(j job) Result { return checkHub(ctx, env, m, j.r, j.u) })
}

// leafClusterName is the name the engine gives this broker's cluster: the
// cluster's own with peers, else the identity.
func leafClusterName(c *config.Config) string {
	if len(c.Network.Peers) > 1 {
		return c.Network.ClusterName
	}
	return c.Identity
}

func checkHub(ctx context.Context, env *Env, m *material, r config.LeafRemote, u *url.URL) Result {
	c := env.Config
	host, port := u.Hostname(), u.Port()
	ws := u.Scheme == "ws" || u.Scheme == "wss"
	if port == "" { // only websocket urls come without one
		port = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
	}
	res := Result{Item: r.Name + " " + u.Redacted(),
		Wanted: fmt.Sprintf("%s resolves and its leafnode port answers with a certificate from our CA naming %s, takes this broker's, and has a cluster name other than %s", host, host, leafClusterName(c))}
	fail := func(found, fix string) Result {
		res.Status, res.Found, res.Fix = Fail, found, fix
		return res
	}
	ip := host
	if net.ParseIP(host) == nil {
		lctx, cancel := context.WithTimeout(ctx, dialTimeout)
		addrs, err := env.Sys.LookupHost(lctx, host)
		cancel()
		if err != nil || len(addrs) == 0 {
			return fail(fmt.Sprintf("%s does not resolve: %v", host, err), "add "+host+" to DNS (or /etc/hosts), or write the hub's address in "+r.Key("url"))
		}
		ip = addrs[0]
	}
	addr := net.JoinHostPort(ip, port)
	dctx, cancel := context.WithTimeout(ctx, dialTimeout+infoTimeout+hubWait)
	defer cancel()
	raw, err := env.Sys.Dial(dctx, "tcp", addr)
	if err != nil {
		return fail("cannot connect to "+addr+": "+dialReason(err), "start the hub, or open TCP "+port+" from here to it; check "+r.Key("url"))
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(dialTimeout + infoTimeout + hubWait))
	if ws {
		res.Status, res.Found = Pass, addr+" accepts connections (a websocket url: certificates and names are checked when the broker connects)"
		return res
	}
	info, f := readInfo(raw, addr, m.pair != nil, brokerKind)
	if f != nil {
		return fail(f.reason, "check that "+addr+" is the hub's leafnode port (nats-server leafnodes { listen }, choria-broker plugin.choria.network.leafnode_port)")
	}
	if name := leafClusterName(c); info.Cluster != "" && info.Cluster == name {
		return fail(fmt.Sprintf("%s answers as %s in a cluster named %s, as this broker's is: the hub refuses the link", addr, info.ServerName, info.Cluster),
			"give this broker's cluster a name of its own in plugin.choria.network.gateway_name (on every member), or rename the hub's")
	}
	hubSays := fmt.Sprintf("%s answers as %s", addr, info.ServerName)
	if info.Cluster != "" {
		hubSays += " (cluster " + info.Cluster + ")"
	}
	switch {
	case r.TLSDisable && info.TLSRequired:
		return fail(hubSays+" and requires TLS, but "+r.Key("tls.disable")+" = true", "remove "+r.Key("tls.disable"))
	case r.TLSDisable:
		res.Status, res.Found = Warn, hubSays+" without TLS: fleet traffic crosses in clear"
		res.Fix = "turn TLS on at the hub and remove " + r.Key("tls.disable")
		return res
	case !info.TLSRequired:
		return fail(hubSays+" without TLS, and this remote speaks TLS", "turn TLS on at the hub's leafnode port; or, only for an old hub that cannot, set "+r.Key("tls.disable")+" = true")
	}
	leaf, f := hubTLS(ctx, env, m, r, raw, host, addr)
	if f != nil {
		return fail(f.reason, f.fix)
	}
	res.Status, res.Found = Pass, hubSays
	if leaf != nil {
		res.Found += " with " + leaf.Subject.String() + ", and takes this broker's certificate"
	} else {
		res.Status, res.Fix = Warn, "set "+r.Key("tls.verify")+" = true once the hub's certificate is from our CA or tls.ca"
		res.Found += " and takes this broker's certificate; its own is not checked (" + r.Key("tls.verify") + " = false)"
	}
	if info.Domain != "" && c.Network.Stream.Store == "" && c.Network.Stream.Domain != info.Domain {
		res.Status = Warn
		res.Found += "; its Choria Streams have the domain " + info.Domain
		res.Fix = "set plugin.choria.network.stream.domain = " + info.Domain + " here, so that clients on this leaf reach the hub's Streams"
	}
	return res
}

// hubTLS does the leaf's side of TLS on raw as the broker would: its
// certificate (or tls.cert), the hub's checked against our CA and CRL (or
// tls.ca) and host unless tls.verify is off, then waits for the hub to
// refuse ours. It returns the hub's certificate, nil when not checked.
func hubTLS(ctx context.Context, env *Env, m *material, r config.LeafRemote, raw net.Conn, host, addr string) (*x509.Certificate, *probeFailure) {
	pair := m.pair
	if r.TLSCert != "" {
		kp, err := pki.LoadKeyPair(r.TLSCert, r.TLSKey)
		if err != nil {
			return nil, &probeFailure{reason: r.Key("tls.cert") + ": " + err.Error(), fix: "give " + r.Key("tls.cert") + " and tls.key a certificate and its key"}
		}
		pair = kp
	}
	if pair == nil {
		return nil, &probeFailure{reason: "this broker's certificate did not load (see pki.files)", fix: "fix pki.files first"}
	}
	trust := m.trust()
	if r.TLSCA != "" {
		cas, err := pki.ReadCertificates(r.TLSCA)
		if err != nil {
			return nil, &probeFailure{reason: r.Key("tls.ca") + ": " + err.Error(), fix: "point " + r.Key("tls.ca") + " at the hub's CA bundle"}
		}
		trust = pki.NewTrust(cas, nil)
	}
	if trust == nil {
		return nil, &probeFailure{reason: "the CA bundle did not load (see pki.files)", fix: "fix pki.files first"}
	}
	// The hub checks ours as a client certificate.
	if err := pki.NewTrust(trust.CAs, nil).VerifyClient(pair.Chain, env.Now); refusal(err) == pki.WrongUsage {
		return nil, &probeFailure{reason: "the certificate this remote presents cannot log in to a hub: " + err.Error(),
			fix: "issue it with the clientAuth extended key usage (Puppet's certificates have it)"}
	}
	var refused error
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // checked below, as the broker does
		Certificates:       []tls.Certificate{*pair.TLS()},
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	if r.TLSVerify {
		cfg.VerifyConnection = verifyServerAt(trust, env.Now, host, &refused)
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		switch {
		case refused != nil && refusal(refused) == pki.UnknownCA:
			return nil, &probeFailure{reason: addr + " presents a certificate from another CA: " + refused.Error(),
				fix: "a hub on another PKI needs its CA in " + r.Key("tls.ca") + "; else check what listens on " + addr}
		case refused != nil:
			return nil, &probeFailure{reason: addr + " presents a certificate we refuse: " + refused.Error(),
				fix: "the hub needs a valid certificate from our CA naming " + host + ", or list it in " + r.Key("url") + " by a name its certificate carries"}
		}
		if f := hubRefusal(err, addr, r); f != nil {
			return nil, f
		}
		return nil, &probeFailure{reason: "TLS with " + addr + " failed: " + err.Error(), fix: "check that " + addr + " is the hub's leafnode port"}
	}
	conn.SetReadDeadline(time.Now().Add(hubWait))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		if f := hubRefusal(err, addr, r); f != nil {
			return nil, f
		}
	}
	if !r.TLSVerify {
		return nil, nil
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

// hubRefusal is the hub refusing our certificate with a TLS alert.
func hubRefusal(err error, addr string, r config.LeafRemote) *probeFailure {
	if !strings.Contains(err.Error(), "remote error: tls") {
		return nil
	}
	return &probeFailure{reason: addr + " refused this broker's certificate (" + err.Error() + ")",
		fix: "on a choria-broker hub, plugin.choria.network.leafnode_brokers must match this broker's certificate name; the hub must trust our CA and not have revoked the certificate (tls.cert of " + r.Name + " if set)"}
}
