package federation

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// fakeSRV answers the names it knows, NXDOMAIN for the rest.
func fakeSRV(records map[string][]*net.SRV) srvLookup {
	return func(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
		q := "_" + service + "._" + proto + "." + name
		if r, ok := records[q]; ok {
			return q, r, nil
		}
		return "", nil, &net.DNSError{Err: "no such host", Name: q, IsNotFound: true}
	}
}

func TestLocator(t *testing.T) {
	t.Parallel()
	dns := fakeSRV(map[string][]*net.SRV{
		"_x-puppet-mcollective_federation._tcp.example.net": {{Target: "fed1.example.net.", Port: 4223}, {Target: "fed2.example.net.", Port: 4223}},
		"_mcollective-server._tcp.example.net":              {{Target: "nats.example.net.", Port: 4222}},
	})
	fedSRV := []string{"mcollective-federation_server", "x-puppet-mcollective_federation"}
	collSRV := []string{"mcollective-server", "x-puppet-mcollective"}
	cases := []struct {
		name string
		loc  locator
		want []string
		err  string
	}{
		{"hosts win", locator{hosts: []string{"a:4222", "tls://b:4222"}, useSRV: true, domain: "example.net", services: fedSRV, lookup: dns}, []string{"nats://a:4222", "tls://b:4222"}, ""},
		{"second SRV name", locator{useSRV: true, domain: "example.net", services: fedSRV, lookup: dns}, []string{"nats://fed1.example.net:4223", "nats://fed2.example.net:4223"}, ""},
		{"first SRV name", locator{useSRV: true, domain: "example.net", services: collSRV, lookup: dns, fallback: []string{"nats://puppet:4222"}}, []string{"nats://nats.example.net:4222"}, ""},
		{"collective fallback", locator{useSRV: true, domain: "other.net", services: collSRV, lookup: dns, fallback: []string{"nats://puppet:4222"}}, []string{"nats://puppet:4222"}, ""},
		{"federation has no fallback", locator{setting: "plugin.choria.federation_middleware_hosts", useSRV: true, domain: "other.net", services: fedSRV, lookup: dns}, nil, "no SRV record"},
		{"srv off", locator{setting: "plugin.choria.federation_middleware_hosts", services: fedSRV, lookup: dns}, nil, "use_srv is off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.loc.servers(context.Background())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("%v %v, want %v", got, err, tc.want)
			}
		})
	}
	if d := srvDomain("", "", "broker.dc1.example.net"); d != "dc1.example.net" {
		t.Fatalf("domain %q", d)
	}
	if d := srvDomain("env.net", "conf.net", "a.b.c"); d != "env.net" {
		t.Fatalf("domain %q", d)
	}
}

// TestNewRefuses: settings and credentials are checked before anything runs.
func TestNewRefuses(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	base := func() *config.Config {
		cfg := config.Default()
		cfg.Identity = env.PKI.Broker
		cfg.BrokerFederation = true
		cfg.Federation.MiddlewareHosts = []string{"nats://127.0.0.1:1"}
		cfg.UseSRV = false
		cfg.Security.SSLDir = env.PKI.SSLDir
		return cfg
	}
	cases := []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"off", func(c *config.Config) { c.BrokerFederation = false }, "plugin.choria.broker_federation = true"},
		{"no federation network", func(c *config.Config) { c.Federation.MiddlewareHosts = nil }, "set plugin.choria.federation_middleware_hosts"},
		{"no certificate", func(c *config.Config) { c.Identity = "nobody.example.net" }, "nobody.example.net.pem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(cfg)
			_, err := New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Metrics go to the registry given, and only once per registry.
	reg := prometheus.NewRegistry()
	if _, err := New(base(), slog.New(slog.DiscardHandler), reg); err != nil {
		t.Fatal(err)
	}
	var are prometheus.AlreadyRegisteredError
	if _, err := New(base(), slog.New(slog.DiscardHandler), reg); !errors.As(err, &are) {
		t.Fatalf("second broker on one registry: %v", err)
	}
}

// TestBrokersFromSRV: with no hosts configured, a federation broker finds
// both networks in a real DNS server's records (the federation network
// under its second SRV name) and carries a federated ping.
func TestBrokersFromSRV(t *testing.T) {
	t.Parallel()
	if os.Getenv("CHORIA_SRV_DOMAIN") != "" {
		t.Skip("CHORIA_SRV_DOMAIN is set and would override the test's domain")
	}
	w := newWorld(t, "a")
	port := func(network string) int {
		u, err := url.Parse(w.url(network))
		must(t, err)
		p, err := strconv.Atoi(u.Port())
		must(t, err)
		return p
	}
	dns := testutil.DNS(t, "example.net",
		testutil.SRV{Name: "_x-puppet-mcollective_federation._tcp.example.net", Target: "localhost", Port: port("fed"), Priority: 10, Weight: 5},
		testutil.SRV{Name: "_mcollective-server._tcp.example.net", Target: "localhost", Port: port("a"), Priority: 10, Weight: 5},
	)
	cfg := w.config("a")
	cfg.Federation.MiddlewareHosts, cfg.MiddlewareHosts = nil, nil
	cfg.UseSRV, cfg.SRVDomain = true, "example.net"
	w.start(cfg, dns.LookupSRV, nil)
	nodes := w.emulate("a", 5)
	expectNames(t, w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Expect = 5 }), nodes)
}

// TestNetworks: what preflight tries is what Run dials, with the subject
// the federation broker needs on each side.
func TestNetworks(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Identity = "fed1.example.net"
	cfg.SRVDomain = "example.net"
	cfg.Federation.Cluster = "beta"
	cfg.Federation.MiddlewareHosts = []string{"fednats1:4222", "nats://fednats2:4222"}
	dns := fakeSRV(map[string][]*net.SRV{"_mcollective-server._tcp.example.net": {{Target: "nats.example.net.", Port: 4222}}})
	nets := Networks(context.Background(), cfg, dns)
	if len(nets) != 2 {
		t.Fatalf("%+v", nets)
	}
	fed, coll := nets[0], nets[1]
	if fed.Side != "federation" || fed.Setting != "plugin.choria.federation_middleware_hosts" || fed.Subject != "choria.federation.beta.federation" ||
		!slices.Equal(fed.Servers, []string{"nats://fednats1:4222", "nats://fednats2:4222"}) || fed.Err != nil {
		t.Errorf("federation side %+v", fed)
	}
	if os.Getenv("CHORIA_SRV_DOMAIN") == "" && !slices.Equal(coll.Servers, []string{"nats://nats.example.net:4222"}) {
		t.Errorf("collective side from SRV: %+v", coll)
	}
	if coll.Side != "collective" || coll.Setting != "plugin.choria.middleware_hosts" || coll.Subject != "choria.federation.beta.collective" {
		t.Errorf("collective side %+v", coll)
	}

	cfg.UseSRV = false
	cfg.Federation.MiddlewareHosts = nil
	nets = Networks(context.Background(), cfg, dns)
	if nets[0].Err == nil || !strings.Contains(nets[0].Err.Error(), "set plugin.choria.federation_middleware_hosts") {
		t.Errorf("federation side without hosts: %+v", nets[0])
	}
	if !slices.Equal(nets[1].Servers, []string{"nats://puppet:4222"}) {
		t.Errorf("collective side falls back to puppet:4222: %+v", nets[1])
	}
}
