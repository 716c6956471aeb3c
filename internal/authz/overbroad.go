package authz

import (
	"fmt"
	"regexp"

	"github.com/choria-broker/choria-broker/internal/config"
)

// A PatternSetting is a certificate name pattern setting and what a
// certificate matching it may do.
type PatternSetting struct {
	Setting  string
	Patterns []string
	Grants   string // "every such certificate ..."
	// OwnNames: the broker's own names may match (cluster and federation
	// brokers are brokers), so they and the ssldir's names, which are
	// often other brokers' in a test CA, are not probed.
	OwnNames bool
}

// PatternSettings are the settings in force that give a certificate more
// rights than a node's: the role patterns while roles are on (off, every
// certificate has every right anyway, and that is warned about),
// cluster_brokers when there is a cluster, gateway_brokers with gateways.
func PatternSettings(c *config.Config) []PatternSetting {
	var out []PatternSetting
	if c.Network.Roles {
		out = append(out,
			PatternSetting{Setting: "plugin.choria.security.privileged_users", Patterns: c.Security.PrivilegedUsers,
				Grants: "every such certificate may do anything, as with plugin.choria.network.roles = false"},
			PatternSetting{Setting: "plugin.choria.network.federation_brokers", Patterns: c.Network.FederationBrokers, OwnNames: true,
				Grants: "every such certificate gets the federation role and may command the fleet"},
			PatternSetting{Setting: "plugin.choria.security.certname_whitelist", Patterns: c.Security.CertnameWhitelist,
				Grants: "every such certificate gets the client role and may command the fleet"})
	}
	if len(c.Network.Peers) > 0 {
		out = append(out, PatternSetting{Setting: "plugin.choria.network.cluster_brokers", Patterns: c.Network.ClusterBrokers, OwnNames: true,
			Grants: "every such certificate may join the cluster as a route and read all its traffic"})
	}
	if c.Network.GatewayPort > 0 {
		out = append(out, PatternSetting{Setting: "plugin.choria.network.gateway_brokers", Patterns: c.Network.GatewayBrokers, OwnNames: true,
			Grants: "every such certificate may link as a gateway of another cluster and read all this cluster's traffic"})
	}
	if c.Network.LeafnodePort > 0 {
		out = append(out, PatternSetting{Setting: "plugin.choria.network.leafnode_brokers", Patterns: c.Network.LeafnodeBrokers, OwnNames: true,
			Grants: "every such certificate may connect as a leafnode, read all traffic and command the fleet"})
	}
	return out
}

// probeNames are names ordinary node certificates carry, and random ones:
// a pattern matching any of them matches node certificates.
var probeNames = []string{
	"node1.example.net", "node1", "web-01.prod.example.com", "db3.internal",
	"localhost", "k8s-worker-7f3a9c", "q7zr3k9w.invalid", "x",
}

// clientLike is Choria's naming convention for client and privileged
// certificates (the defaults of certname_whitelist and privileged_users);
// names found on disk that follow it are not taken for node names.
var clientLike = regexp.MustCompile(`\.(mcollective|choria)$`)

// Overbroad returns a warning for each pattern that matches ordinary node
// names: a catch-all such as .* turns the roles off as surely as
// plugin.choria.network.roles = false, but silently. own are the broker's
// own certificate names, seen the names of certificates found beside it
// (a Puppet ssldir); both are node names unless they look like a client's.
func Overbroad(settings []PatternSetting, own, seen []string) []string {
	var out []string
	for _, s := range settings {
		var names []string
		if !s.OwnNames {
			names = append(names, nodeLike(own)...)
			names = append(names, nodeLike(seen)...)
		}
		names = append(names, probeNames...)
		for _, p := range s.Patterns {
			re, err := regexp.Compile(stripSlashes(p))
			if err != nil || p == "" {
				continue // config refuses bad patterns; nothing to say here
			}
			example, ok := firstMatch(re, names)
			if !ok {
				continue
			}
			what := "matches node certificates such as " + fmt.Sprintf("%q", example)
			if matchesEverything(re) {
				what = "matches every certificate name, node certificates such as " + fmt.Sprintf("%q", example) + " included"
			}
			out = append(out, fmt.Sprintf("%s pattern %q %s: %s; anchor it to the names it is meant for, such as %s",
				s.Setting, p, what, s.Grants, anchoredExample(s.Setting)))
		}
	}
	return out
}

func nodeLike(names []string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !clientLike.MatchString(n) {
			out = append(out, n)
		}
	}
	return out
}

func firstMatch(re *regexp.Regexp, names []string) (string, bool) {
	for _, n := range names {
		if re.MatchString(n) {
			return n, true
		}
	}
	return "", false
}

// matchesEverything: .*, ^, $, an empty alternative and the like match
// the empty name, and so any name.
func matchesEverything(re *regexp.Regexp) bool {
	return re.MatchString("") && re.MatchString("q7zr3k9w.invalid")
}

func anchoredExample(setting string) string {
	switch setting {
	case "plugin.choria.security.privileged_users":
		return `\.privileged\.mcollective$`
	case "plugin.choria.security.certname_whitelist":
		return `\.mcollective$`
	case "plugin.choria.network.gateway_brokers":
		return `^gw\d+\.west\.example\.net$`
	default:
		return `^broker\d+\.example\.net$`
	}
}

func stripSlashes(p string) string {
	if len(p) >= 2 && p[0] == '/' && p[len(p)-1] == '/' {
		return p[1 : len(p)-1]
	}
	return p
}
