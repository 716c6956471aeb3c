package preflight

import (
	"context"
	"fmt"
	"net"
)

// peers: a cluster forms only when every member resolves, listens on its
// cluster port and presents a certificate from our CA that names it.
type peers struct{}

func (peers) Name() string { return "net.peers" }

func (peers) Run(ctx context.Context, env *Env) []Result {
	m := loadMaterial(env)
	list, source, err := clusterPeers(ctx, env, m.leaf())
	switch {
	case err != nil && source != "plugin.choria.network.peers":
		return []Result{{Status: Skip, Found: "SRV lookup failed (see net.srv)", Wanted: "peers that answer"}}
	case err != nil:
		return []Result{{Status: Fail, Found: "plugin.choria.network.peers: " + err.Error(), Wanted: "name, host:port or nats://host:port entries",
			Fix: "list every member as name or name:port, comma separated"}}
	case len(list) == 0:
		return []Result{{Status: Skip, Found: "no peers: a single broker", Wanted: "peers that answer, when clustered"}}
	}
	return atOnce(list, func(p peer) Result { return checkPeer(ctx, env, m, p) })
}

func checkPeer(ctx context.Context, env *Env, m *material, p peer) Result {
	wanted := fmt.Sprintf("resolves, answers mutual TLS on port %d with a certificate from our CA naming %s", p.port, p.host)
	if !env.Config.Network.PeerTLS {
		wanted = fmt.Sprintf("resolves, answers on port %d (route TLS off)", p.port)
	}
	res := Result{Item: p.entry, Wanted: wanted}
	if p.self {
		res.Status, res.Found = Pass, "this broker"
		return res
	}
	ip := p.host
	if net.ParseIP(p.host) == nil {
		lctx, cancel := context.WithTimeout(ctx, dialTimeout)
		addrs, err := env.Sys.LookupHost(lctx, p.host)
		cancel()
		if err != nil || len(addrs) == 0 {
			res.Status, res.Found = Fail, fmt.Sprintf("%s does not resolve: %v", p.host, err)
			res.Fix = "add " + p.host + " to DNS (or /etc/hosts on every member), or list the peer by address"
			return res
		}
		ip = addrs[0]
	}
	addr := net.JoinHostPort(ip, fmt.Sprint(p.port))
	probe, fail := probeRoute(ctx, env, m, addr, p.host)
	if fail != nil {
		res.Status, res.Found, res.Fix = Fail, fail.reason, fail.fix
		return res
	}
	res.Status = Pass
	res.Found = fmt.Sprintf("%s answers as %s", addr, probe.info.ServerName)
	if probe.leaf != nil {
		res.Found = fmt.Sprintf("%s answers TLS as %s with %s from our CA", addr, probe.info.ServerName, probe.leaf.Subject)
	}
	return res
}
