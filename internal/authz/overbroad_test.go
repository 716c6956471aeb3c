package authz

import (
	"strings"
	"testing"

	"github.com/choria-broker/choria-broker/internal/config"
)

func TestOverbroad(t *testing.T) {
	t.Parallel()
	priv := func(p ...string) []PatternSetting {
		return []PatternSetting{{Setting: "plugin.choria.security.privileged_users", Patterns: p, Grants: "may do anything"}}
	}
	cases := []struct {
		name     string
		settings []PatternSetting
		own      []string
		seen     []string
		want     []string // substrings of the one warning; nil: no warning
	}{
		{"defaults", priv(`\.privileged.mcollective$`, `\.privileged.choria$`), []string{"broker.example.net"}, nil, nil},
		{"slashes", priv(`/\.privileged\.mcollective$/`), nil, nil, nil},
		{"catch-all", priv(`.*`), nil, nil, []string{`privileged_users pattern ".*" matches every certificate name, node certificates such as "node1.example.net" included: may do anything`}},
		{"anchors only", priv(`^`), nil, nil, []string{`"^" matches every certificate name`}},
		{"dollar", priv(`$`), nil, nil, []string{`"$" matches every certificate name`}},
		{"dot", priv(`.`), nil, nil, []string{`"." matches node certificates such as "node1.example.net"`}},
		{"dot plus", priv(`.+`), nil, nil, []string{`".+" matches node certificates`}},
		{"empty alternative", priv(`admin|`), nil, nil, []string{`matches every certificate name`}},
		{"domain", priv(`example\.net$`), nil, nil, []string{`matches node certificates such as "node1.example.net"`}},
		// The broker's own name is a node name for the client roles: Choria
		// servers on a broker host use the host's certificate.
		{"own name", priv(`^broker1\.`), []string{"broker1.corp"}, nil, []string{`such as "broker1.corp"`}},
		// Real names found in the ssldir come first in the example.
		{"seen", priv(`\.corp$`), nil, []string{"alice.mcollective", "web7.corp"}, []string{`such as "web7.corp"`}},
		// Client-looking names on disk are not node names.
		{"seen client", priv(`^alice\.`), nil, []string{"alice.mcollective"}, nil},
		{"only empty", priv(`^$`), nil, nil, nil},
		// Federation and cluster brokers are brokers: their own names may match.
		{"federation own", []PatternSetting{{Setting: "plugin.choria.network.federation_brokers", Patterns: []string{`^broker1\.`}, OwnNames: true}}, []string{"broker1.corp"}, []string{"broker1.corp"}, nil},
		{"federation catch-all", []PatternSetting{{Setting: "plugin.choria.network.federation_brokers", Patterns: []string{`.*`}, OwnNames: true, Grants: "federation"}}, nil, nil, []string{`federation_brokers pattern ".*" matches every`}},
	}
	for _, tc := range cases {
		got := Overbroad(tc.settings, tc.own, tc.seen)
		if tc.want == nil {
			if len(got) != 0 {
				t.Errorf("%s: unexpected warnings %q", tc.name, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s: want one warning, got %q", tc.name, got)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(got[0], w) {
				t.Errorf("%s: %q does not say %q", tc.name, got[0], w)
			}
		}
	}
}

// The settings checked follow the configuration: role patterns only while
// roles are on, cluster_brokers only with a cluster; defaults never warn.
func TestPatternSettings(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	if w := Overbroad(PatternSettings(cfg), []string{"broker.example.net"}, nil); len(w) != 0 {
		t.Fatalf("defaults warn: %q", w)
	}
	cfg.Security.CertnameWhitelist = []string{`.*`}
	cfg.Network.ClusterBrokers = []string{`.*`}
	w := Overbroad(PatternSettings(cfg), nil, nil)
	if len(w) != 1 || !strings.Contains(w[0], "certname_whitelist") || !strings.Contains(w[0], "client role") {
		t.Fatalf("client catch-all: %q", w)
	}
	cfg.Network.Peers = []string{"a.example.net", "b.example.net"}
	if w := Overbroad(PatternSettings(cfg), nil, nil); len(w) != 2 || !strings.Contains(w[1], "cluster_brokers") {
		t.Fatalf("with peers: %q", w)
	}
	cfg.Network.Roles = false
	if w := Overbroad(PatternSettings(cfg), nil, nil); len(w) != 1 || !strings.Contains(w[0], "cluster_brokers") {
		t.Fatalf("roles off: %q", w)
	}
	// gateway_brokers only with a gateway port: a gateway reads all traffic.
	cfg.Network.GatewayBrokers = []string{`example\.net$`}
	if w := Overbroad(PatternSettings(cfg), nil, nil); len(w) != 1 {
		t.Fatalf("gateway_brokers without a gateway port: %q", w)
	}
	cfg.Network.GatewayPort = 7222
	if w := Overbroad(PatternSettings(cfg), nil, nil); len(w) != 2 || !strings.Contains(w[1], "gateway_brokers") || !strings.Contains(w[1], `^gw\d+\.west\.example\.net$`) {
		t.Fatalf("with gateways: %q", w)
	}
}
