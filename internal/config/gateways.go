package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// GatewayRemote is one entry of plugin.choria.network.gateway_remotes with
// its plugin.choria.network.gateway_remote.NAME.* settings.
type GatewayRemote struct {
	Name string
	URLs []string // nats://host:port, in the order written
	TLS  RemoteTLS
}

// RemoteTLS is a remote link's tls.* settings, as go-choria reads them for
// gateway and leafnode remotes.
type RemoteTLS struct {
	// Cert and Key replace the broker's own certificate on this link; CA
	// replaces the CA bundle the remote's certificate is checked against.
	Cert, Key, CA string
	// SkipVerify is tls.verify = false: the remote's certificate is not
	// checked (loudly warned). The zero value verifies.
	SkipVerify bool
	Disable    bool // tls.disable: plain TCP, for an old go-choria gateway only
}

// gatewayPrefix is the family of per-remote gateway keys.
const gatewayPrefix = "plugin.choria.network.gateway_remote."

// gatewayProps are the per-remote keys, go-choria's.
var gatewayProps = []string{"urls", "tls.cert", "tls.key", "tls.ca", "tls.verify", "tls.disable"}

// readGateways builds Network.Gateways from the files' gateway_remote.*
// keys, in gateway_remotes order. Every key must belong to a listed
// remote and be one of gatewayProps: the family is accepted as a whole,
// so a misspelt property would otherwise be ignored silently.
func (p *parser) readGateways() {
	c := p.c
	if c.Network.GatewayPort == 0 && len(c.Network.GatewayBrokers) > 0 {
		p.warns = append(p.warns, c.KeyError("plugin.choria.network.gateway_brokers", "set without plugin.choria.network.gateway_port: no gateway listens, so it has no effect"))
	}
	if p.failed["plugin.choria.network.gateway_remotes"] {
		return // its own error says why; each remote's keys would only repeat it
	}
	listed := map[string]int{}
	for _, name := range c.Network.GatewayRemotes {
		if _, dup := listed[name]; dup {
			continue
		}
		listed[name] = len(c.Network.Gateways)
		c.Network.Gateways = append(c.Network.Gateways, GatewayRemote{Name: name})
	}
	var keys []string
	for k := range c.Raw {
		if strings.HasPrefix(k, gatewayPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, prop, _ := strings.Cut(strings.TrimPrefix(k, gatewayPrefix), ".")
		i, ok := listed[name]
		switch {
		case !ok:
			p.fail(c.KeyError(k, fmt.Sprintf("gateway remote %q is not in plugin.choria.network.gateway_remotes, so this setting would be ignored; add %s to gateway_remotes or remove its settings", name, name)))
			continue
		case !slices.Contains(gatewayProps, prop):
			p.fail(c.KeyError(k, fmt.Sprintf("unknown gateway remote setting %q; a gateway remote has %s", prop, strings.Join(gatewayProps, ", "))))
			continue
		}
		g := &c.Network.Gateways[i]
		v := strings.TrimSpace(c.Raw[k])
		switch prop {
		case "urls":
			urls, msg := gatewayURLs(v)
			if msg != "" {
				e := c.KeyError(k, msg)
				e.Value = v
				p.fail(e)
			}
			g.URLs = urls
		case "tls.cert":
			g.TLS.Cert = expandHome(v)
		case "tls.key":
			g.TLS.Key = expandHome(v)
		case "tls.ca":
			g.TLS.CA = expandHome(v)
		case "tls.verify", "tls.disable":
			b, ok := remoteBool(v)
			if !ok {
				e := c.KeyError(k, "not a boolean (true/false, yes/no, on/off, 1/0); a word go-choria would read as true is refused here, as this one changes who can read the fleet's traffic")
				e.Value = v
				p.fail(e)
				continue
			}
			if prop == "tls.verify" {
				g.TLS.SkipVerify = !b
			} else {
				g.TLS.Disable = b
			}
		}
	}
}

// remoteBool reads the per-remote booleans of gateway and leafnode
// remotes: the config's booleans and go-choria's on/off. Unlike go-choria,
// which reads any other word as true, a typo is an error rather than TLS
// switched off.
func remoteBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "on":
		return true, true
	case "off":
		return false, true
	}
	return parseBool(s)
}

// gatewayURLs reads a remote's urls: host:port or nats://host:port,
// comma separated; the port is required, as gateways have no standard one.
func gatewayURLs(v string) ([]string, string) {
	var out []string
	for _, item := range SplitList(v) {
		raw := item
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Sprintf("%q is not host:port or nats://host:port", item)
		}
		if u.Scheme != "nats" {
			return nil, fmt.Sprintf("%q: a gateway URL is nats://host:port (TLS is set per remote with tls.*, not by the scheme)", item)
		}
		if u.User != nil {
			return nil, fmt.Sprintf("%q carries a user name or password; gateways are admitted by certificate here: remove it", item)
		}
		port, err := strconv.Atoi(u.Port())
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Sprintf("%q has no port (1-65535); add the remote cluster's gateway_port", item)
		}
		out = append(out, "nats://"+net.JoinHostPort(u.Hostname(), strconv.Itoa(port)))
	}
	if len(out) == 0 {
		return nil, "no URL; list the remote cluster's gateways as host:port, comma separated"
	}
	return out, ""
}

// gatewaySettings checks that the gateway settings make a super-cluster
// member: remotes need the port and URLs, and a cluster's own name is
// not a remote.
func gatewaySettings(c *Config) []*Error {
	n := c.Network
	var errs []*Error
	if n.GatewayPort == 0 {
		if len(n.GatewayRemotes) > 0 {
			errs = append(errs, c.KeyError("plugin.choria.network.gateway_remotes", "set without plugin.choria.network.gateway_port, so no gateway would run; set gateway_port (every member of a super-cluster listens for gateways) or remove gateway_remotes"))
		}
		return errs
	}
	if !collectiveName.MatchString(n.ClusterName) {
		errs = append(errs, c.KeyError("plugin.choria.network.gateway_name", fmt.Sprintf("%q: with gateways on, the cluster name may only contain letters, digits, \"_\" and \"-\"", n.ClusterName)))
	}
	for _, name := range n.GatewayRemotes {
		if name == n.ClusterName {
			errs = append(errs, c.KeyError("plugin.choria.network.gateway_remotes", fmt.Sprintf("%q is this cluster's own name (plugin.choria.network.gateway_name%s); every cluster of a super-cluster needs its own name: set gateway_name on this cluster, or remove %s from gateway_remotes", name, at(c.Where("plugin.choria.network.gateway_name")), name)))
		}
	}
	for _, g := range n.Gateways {
		_, badURLs := c.Raw[gatewayPrefix+g.Name+".urls"] // set but refused: reported with its line
		if len(g.URLs) == 0 && !badURLs {
			errs = append(errs, c.KeyError("plugin.choria.network.gateway_remotes", fmt.Sprintf("remote %s has no %s%s.urls; set it to the remote cluster's gateways, host:port, comma separated", g.Name, gatewayPrefix, g.Name)))
		}
		tls := gatewayPrefix + g.Name + ".tls."
		if g.TLS.Disable && (g.TLS.Cert != "" || g.TLS.Key != "" || g.TLS.CA != "" || g.TLS.SkipVerify) {
			errs = append(errs, c.KeyError(tls+"disable", "plaintext leaves no use for the tls.cert, tls.key, tls.ca or tls.verify also set for this remote; remove them, or tls.disable"))
		}
		if (g.TLS.Cert == "") != (g.TLS.Key == "") {
			key, missing := tls+"cert", tls+"key"
			if g.TLS.Cert == "" {
				key, missing = missing, key
			}
			errs = append(errs, c.KeyError(key, "set without "+missing+"; set both to present another certificate to this remote, or neither to present the broker's own"))
		}
	}
	return errs
}

// checkRemoteNames: remote cluster names are key tokens
// (gateway_remote.NAME.urls) and the engine's gateway names.
func checkRemoteNames(v any) string {
	seen := map[string]bool{}
	for _, n := range v.([]string) {
		if !collectiveName.MatchString(n) {
			return `remote "` + n + `" may only contain letters, digits, "_" and "-"`
		}
		if seen[n] {
			return `remote "` + n + `" is listed twice`
		}
		seen[n] = true
	}
	return ""
}

// at is " at file:line" when where is set.
func at(where string) string {
	if where == "" {
		return ""
	}
	return " at " + where
}
