package preflight

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// websocket: the wss:// listener needs its port, the advertised name must
// resolve and be on the certificate (clients check it), and the
// certificate must serve TLS to the clients the CA signs.
type websocket struct{}

func (websocket) Name() string { return "net.websocket" }

func (websocket) Run(ctx context.Context, env *Env) []Result {
	const setting = "plugin.choria.network.websocket_port"
	c := env.Config
	port := c.Network.WebsocketPort
	if port == 0 {
		return []Result{{Status: Skip, Found: setting + " is 0 (off)", Wanted: "a wss:// listener when websocket clients are expected"}}
	}
	m := loadMaterial(env)
	out := []Result{checkPort(ctx, env, m, listener{"websocket", setting, c.Network.ListenAddress, port})}

	leaf := m.leaf()
	if leaf == nil {
		return append(out, skipNoCert("a certificate websocket clients accept"))
	}
	cert := Result{Item: "certificate", Wanted: "a certificate for TLS servers (serverAuth) that chains to the CA and is not revoked: websocket clients verify it",
		Found: fmt.Sprintf("%s serves wss://", leaf.Subject), Status: Pass}
	if m.caErr != nil {
		cert.Status, cert.Found = Skip, "the CA bundle did not load (see pki.files)"
	} else if err := pki.NewTrust(m.cas, m.crl).VerifyServer(m.chain, env.Now); err != nil {
		cert.Status, cert.Found = Fail, err.Error()
		cert.Fix = "issue the broker a certificate of the CA with the serverAuth usage (Puppet's have it), valid and not revoked; pki.files, pki.expiry and pki.crl say more"
	}
	out = append(out, cert)

	adv := c.Network.WebsocketAdvertise
	if adv == "" {
		return out
	}
	host, _, _ := net.SplitHostPort(adv) // checked when the file was read
	res := Result{Item: "advertise", Wanted: fmt.Sprintf("%s resolvable and on the broker's certificate: websocket clients of the cluster dial it", host), Status: Pass}
	res.Found = host + " is an address"
	if net.ParseIP(host) == nil {
		addrs, err := env.Sys.LookupHost(ctx, host)
		if err != nil {
			res.Status, res.Found = Fail, fmt.Sprintf("%s does not resolve: %v", host, err)
			res.Fix = "add " + host + " to DNS, or set plugin.choria.network.websocket_advertise to a name that resolves"
			return append(out, res)
		}
		res.Found = fmt.Sprintf("%s resolves to %s", host, strings.Join(addrs, ", "))
	}
	if !pki.CoversName(leaf, host) {
		res.Status = Fail
		res.Found += fmt.Sprintf("; certificate names %s do not include it", strings.Join(pki.Names(leaf), ", "))
		res.Fix = fmt.Sprintf("issue the broker a certificate that names %s (Puppet: dns_alt_names = %s in puppet.conf before the certificate request), or advertise one of its names", host, host)
	} else {
		res.Found += ", on the certificate"
	}
	return append(out, res)
}
