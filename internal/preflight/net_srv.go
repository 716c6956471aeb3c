package preflight

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// srv: with no peers listed and use_srv on, the cluster comes from DNS; a
// broken lookup leaves the broker alone until it restarts.
type srv struct{}

func (srv) Name() string { return "net.srv" }

func (srv) Run(ctx context.Context, env *Env) []Result {
	c := env.Config
	wanted := "SRV records of every member, or none for a single broker"
	switch {
	case !c.UseSRV:
		return []Result{{Status: Skip, Found: "plugin.choria.use_srv = false", Wanted: wanted}}
	case len(c.Network.Peers) > 0:
		return []Result{{Status: Skip, Found: "peers listed; SRV not used", Wanted: wanted}}
	}
	name := srvName(env)
	if name == "" {
		return []Result{{Status: Skip, Found: "no domain: identity " + c.Identity + " has none and plugin.choria.srv_domain is unset", Wanted: wanted}}
	}
	srvs, err := lookupSRV(ctx, env)
	if err != nil {
		return []Result{{Item: name, Status: Warn, Found: "lookup failed: " + err.Error(), Wanted: wanted,
			Fix: "fix DNS (/etc/resolv.conf), or list plugin.choria.network.peers, or set plugin.choria.use_srv = false; the broker runs without a cluster until restarted"}}
	}
	if len(srvs) == 0 {
		return []Result{{Item: name, Status: Pass, Found: "no records: a single broker", Wanted: wanted}}
	}
	var targets []string
	for _, s := range srvs {
		targets = append(targets, net.JoinHostPort(strings.TrimSuffix(s.Target, "."), fmt.Sprint(s.Port)))
	}
	return []Result{{Item: name, Status: Pass, Found: fmt.Sprintf("%d records: %s", len(srvs), strings.Join(targets, ", ")), Wanted: wanted}}
}
