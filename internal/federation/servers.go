package federation

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/protocol"
)

// srvLookup is net.Resolver.LookupSRV, replaceable in tests.
type srvLookup func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)

// locator finds one network's brokers as go-choria does: the configured
// hosts, else the first SRV name that answers, else a fallback.
type locator struct {
	setting  string   // the hosts setting, for messages
	hosts    []string // configured host:port or URLs
	useSRV   bool
	domain   string
	services []string // SRV services, in order of preference
	fallback []string // when nothing else is known; nil means none
	lookup   srvLookup
}

// locators are the federation and collective sides' brokers of cfg.
func locators(cfg *config.Config, lookup srvLookup) (fed, coll *locator) {
	domain := srvDomain(os.Getenv("CHORIA_SRV_DOMAIN"), cfg.SRVDomain, cfg.Identity)
	fed = &locator{
		setting: "plugin.choria.federation_middleware_hosts", hosts: cfg.Federation.MiddlewareHosts,
		useSRV: cfg.UseSRV, domain: domain, lookup: lookup,
		services: []string{"mcollective-federation_server", "x-puppet-mcollective_federation"},
	}
	coll = &locator{
		setting: "plugin.choria.middleware_hosts", hosts: cfg.MiddlewareHosts,
		useSRV: cfg.UseSRV, domain: domain, lookup: lookup,
		services: []string{"mcollective-server", "x-puppet-mcollective"},
		fallback: []string{"nats://puppet:4222"},
	}
	return fed, coll
}

// Network is one side's brokers as the federation broker finds them, and
// the subscription it needs there.
type Network struct {
	Side    string   // federation or collective
	Setting string   // the hosts setting of the side
	Subject string   // what the federation broker subscribes to there
	Servers []string // broker URLs, nil with Err
	Err     error    // no brokers found; names the setting to set
}

// Networks finds both sides' brokers as Run would at this moment, for
// preflight to try them.
func Networks(ctx context.Context, cfg *config.Config, lookup func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)) []Network {
	fed, coll := locators(cfg, lookup)
	var out []Network
	for _, side := range []struct {
		name    string
		loc     *locator
		subject string
	}{
		{federationSide, fed, protocol.FederationSubject(cfg.Federation.Cluster)},
		{collectiveSide, coll, protocol.FederationCollectiveSubject(cfg.Federation.Cluster)},
	} {
		servers, err := side.loc.servers(ctx)
		out = append(out, Network{Side: side.name, Setting: side.loc.setting, Subject: side.subject, Servers: servers, Err: err})
	}
	return out
}

// servers returns broker URLs for a connection attempt. Looked up each
// time, so a re-dial follows DNS changes.
func (l *locator) servers(ctx context.Context) ([]string, error) {
	if len(l.hosts) > 0 {
		return fleet.ServerURLs(l.hosts), nil
	}
	if l.useSRV && l.domain != "" {
		for _, svc := range l.services {
			if urls := l.srv(ctx, svc); len(urls) > 0 {
				return urls, nil
			}
		}
	}
	if l.fallback != nil {
		return l.fallback, nil
	}
	if !l.useSRV || l.domain == "" {
		return nil, fmt.Errorf("%s is empty and plugin.choria.use_srv is off or has no domain; set %s", l.setting, l.setting)
	}
	return nil, fmt.Errorf("%s is empty and no SRV record %s answers for %s; set %s or publish the records", l.setting, strings.Join(l.services, " or "), l.domain, l.setting)
}

func (l *locator) srv(ctx context.Context, service string) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, addrs, err := l.lookup(ctx, service, "tcp", l.domain)
	if err != nil {
		return nil // not found or DNS trouble: try the next name
	}
	var out []string
	for _, a := range addrs {
		out = append(out, "nats://"+net.JoinHostPort(strings.TrimSuffix(a.Target, "."), strconv.Itoa(int(a.Port))))
	}
	return out
}

// srvDomain is CHORIA_SRV_DOMAIN, else plugin.choria.srv_domain, else the
// domain of the identity.
func srvDomain(env, configured, identity string) string {
	if env != "" {
		return env
	}
	if configured != "" {
		return configured
	}
	if i := strings.IndexByte(identity, '.'); i > 0 {
		return identity[i+1:]
	}
	return ""
}
