package preflight

import (
	"context"
	"strings"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// configConflicts: settings that cancel or contradict each other, or
// switch off a protection the operator may not know is off.
type configConflicts struct{}

func (configConflicts) Name() string { return "config.conflicts" }

func (configConflicts) Run(_ context.Context, env *Env) []Result {
	c := env.Config
	var out []Result
	if c.BrokerFederation && rawSet(c.Raw["plugin.choria.federation.collectives"]) {
		out = append(out, Result{Item: "federation", Status: Warn,
			Found:  "plugin.choria.broker_federation = true and plugin.choria.federation.collectives = " + c.Raw["plugin.choria.federation.collectives"],
			Wanted: "federation.collectives only in clients' configurations",
			Fix:    "remove plugin.choria.federation.collectives from this file: it tells clients which federated collectives to address, and a federation broker ignores it"})
	}
	if len(c.Network.Peers) > 0 && !c.Network.PeerTLS {
		out = append(out, Result{Item: "peer_tls", Status: Warn,
			Found:  "plugin.choria.network.peer_tls = false",
			Wanted: "mutual TLS on routes",
			Fix:    "set plugin.choria.network.peer_tls = true once every peer runs choria-broker or TLS routes: without it fleet traffic crosses the network in clear and any host reaching the cluster port can join"})
	}
	if len(c.Network.Peers) > 0 && c.Network.PeerPassword == "" {
		out = append(out, Result{Item: "peer_password", Status: Warn,
			Found:  "plugin.choria.network.peers is set without plugin.choria.network.peer_password",
			Wanted: "a routes password on top of the route certificate check",
			Fix:    "set the same plugin.choria.network.peer_user and peer_password on every member: a broker certificate (or a name matching cluster_brokers) alone then no longer makes a route"})
	}
	for _, r := range c.Network.Gateways {
		key := "plugin.choria.network.gateway_remote." + r.Name + ".tls."
		switch {
		case c.Network.GatewayPort > 0 && r.TLS.Disable:
			out = append(out, Result{Item: "gateways", Status: Warn,
				Found:  key + "disable = true: the gateway port is plaintext, for every cluster",
				Wanted: "mutual TLS on gateways",
				Fix:    "remove it once no old go-choria gateway remains: meanwhile any host reaching the gateway port that names a cluster of gateway_remotes reads and sends all fleet traffic; firewall the port to the old gateway's hosts"})
		case c.Network.GatewayPort > 0 && r.TLS.SkipVerify:
			out = append(out, Result{Item: "gateways", Status: Warn,
				Found:  key + "verify = false: cluster " + r.Name + "'s gateway certificates are not checked",
				Wanted: "gateway certificates checked",
				Fix:    "set it to true (with tls.ca if " + r.Name + " has another CA): anyone on the path can pose as " + r.Name + " and read what this broker sends it"})
		}
	}
	if !c.Network.Roles {
		out = append(out, Result{Item: "roles", Status: Warn,
			Found:  "plugin.choria.network.roles = false",
			Wanted: "roles on",
			Fix:    "remove plugin.choria.network.roles = false: with roles off a stolen node certificate can command the fleet"})
		for _, s := range []struct {
			key string
			set bool
		}{
			{"plugin.choria.network.client_hosts", len(c.Network.ClientHosts) > 0},
			{"plugin.choria.network.deny_server_connections", c.Network.DenyServerConnections},
		} {
			if k := s.key; s.set {
				out = append(out, Result{Item: "roles", Status: Warn,
					Found:  k + " is set while plugin.choria.network.roles = false",
					Wanted: k + " enforced",
					Fix:    k + " is only enforced with roles on: remove plugin.choria.network.roles = false"})
			}
		}
	}
	out = append(out, leafConflicts(c)...)
	for _, w := range overbroad(c) {
		out = append(out, Result{Item: "roles", Status: Warn, Found: w,
			Wanted: "certificate name patterns that match no node certificate",
			Fix:    "anchor the pattern to the names it is meant for (^...$): a stolen node certificate matching it commands the fleet"})
	}
	if len(out) == 0 {
		out = append(out, Result{Status: Pass, Found: "no contradictions", Wanted: "settings that agree; route and gateway TLS and roles on"})
	}
	return out
}

func rawSet(v string) bool { return strings.TrimSpace(v) != "" }

// overbroad: patterns that match node names, tested against the broker's
// identity, its certificate's names and the certificates beside it.
func overbroad(c *config.Config) []string {
	files := pki.ResolveFiles(c)
	own := []string{c.Identity}
	if certs, err := pki.ReadCertificates(files.Certificate); err == nil {
		own = append(own, pki.RoleNames(certs[0])...)
	}
	return authz.Overbroad(authz.PatternSettings(c), own, pki.NamesBeside(files.Certificate))
}

// leafConflicts: a leafnode port nobody may use, patterns for a port that
// is not open, and remotes with TLS checks off.
func leafConflicts(c *config.Config) []Result {
	var out []Result
	n := c.Network
	switch {
	case n.LeafnodePort > 0 && len(n.LeafnodeBrokers) == 0:
		out = append(out, Result{Item: "leafnode_brokers", Status: Warn,
			Found:  "plugin.choria.network.leafnode_port is set without plugin.choria.network.leafnode_brokers: every leafnode is refused",
			Wanted: "leafnode_brokers naming the leaf brokers' certificates",
			Fix:    "set plugin.choria.network.leafnode_brokers to patterns of the leaf brokers' certificate names, such as ^leaf\\d+\\.example\\.net$, or remove leafnode_port"})
	case n.LeafnodePort == 0 && len(n.LeafnodeBrokers) > 0:
		out = append(out, Result{Item: "leafnode_brokers", Status: Warn,
			Found:  "plugin.choria.network.leafnode_brokers is set without plugin.choria.network.leafnode_port: no leafnode port is open",
			Wanted: "leafnode_brokers only with leafnode_port",
			Fix:    "set plugin.choria.network.leafnode_port (7422) to accept leafnodes, or remove leafnode_brokers"})
	}
	remotes, _ := c.LeafRemotes() // errors are config.run's
	for _, r := range remotes {
		switch {
		case r.TLSDisable:
			out = append(out, Result{Item: "leafnode remote " + r.Name, Status: Warn,
				Found: r.Key("tls.disable") + " = true", Wanted: "TLS on every leafnode link",
				Fix: "turn TLS on at the hub and remove " + r.Key("tls.disable") + ": fleet traffic crosses the link in clear"})
		case !r.TLSVerify:
			out = append(out, Result{Item: "leafnode remote " + r.Name, Status: Warn,
				Found: r.Key("tls.verify") + " = false", Wanted: "the hub's certificate checked",
				Fix: "remove " + r.Key("tls.verify") + " (or give the hub's CA in tls.ca): whoever answers at the address gets the fleet's traffic"})
		}
	}
	return out
}
