package pki

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestPeerRule(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("Test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(o IssueOptions) *KeyPair {
		o.KeyType = "ec"
		kp, err := ca.Issue(o)
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	broker := issue(IssueOptions{Name: "nats1.example.net", DNSNames: []string{"nats.example.net"}, IPs: []net.IP{net.ParseIP("10.0.0.1")}})
	wildcard := issue(IssueOptions{Name: "brokers", DNSNames: []string{"*.brokers.example.net"}})
	node := issue(IssueOptions{Name: "node1.example.net", IPs: []net.IP{net.ParseIP("10.0.0.9")}})
	patterns, err := CompilePatterns("plugin.choria.network.cluster_brokers", []string{`/^nats\d+\.dc2\.example\.net$/`, " ", `^broker-`})
	if err != nil {
		t.Fatal(err)
	}
	dc2 := issue(IssueOptions{Name: "nats7.dc2.example.net"})

	rule := PeerRule{Hosts: []string{"nats1.example.net.", "10.0.0.2", "b.brokers.example.net"}, Patterns: patterns, Setting: "plugin.choria.network.cluster_brokers"}
	for _, tc := range []struct {
		name string
		kp   *KeyPair
		host []string // overrides rule.Hosts
		want string   // host or pattern that admits; "" refused
	}{
		{"CN names a peer (trailing dot ignored)", broker, nil, "nats1.example.net."},
		{"DNS SAN names a peer", broker, []string{"nats.example.net"}, "nats.example.net"},
		{"IP SAN is a peer address", broker, []string{"10.0.0.1"}, "10.0.0.1"},
		{"wildcard SAN covers a peer", wildcard, nil, "b.brokers.example.net"},
		{"pattern matches a name", dc2, nil, `^nats\d+\.dc2\.example\.net$`},
		{"node certificate", node, nil, ""},
		{"peer address not on the certificate", broker, []string{"10.0.0.2"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rule
			if tc.host != nil {
				r.Hosts = tc.host
			}
			got, err := r.Match(tc.kp.Leaf())
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("Match = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != NotPeer || !strings.Contains(re.Detail, "plugin.choria.network.cluster_brokers") || !strings.Contains(re.Detail, tc.kp.Leaf().Subject.CommonName) {
				t.Fatalf("Match = %q, %v; want a %q refusal naming the certificate and the setting", got, err, NotPeer)
			}
		})
	}
	if _, err := rule.Match(nil); err == nil {
		t.Fatal("no certificate was admitted")
	}
	if _, err := CompilePatterns("plugin.choria.network.cluster_brokers", []string{"(open"}); err == nil || !strings.Contains(err.Error(), "plugin.choria.network.cluster_brokers") {
		t.Fatalf("bad pattern: %v", err)
	}
}
