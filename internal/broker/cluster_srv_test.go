package broker

import (
	"fmt"
	"testing"

	"github.com/choria-broker/choria-broker/internal/testutil"
)

// TestClusterPeersFromSRV: with no peers listed and plugin.choria.use_srv
// on, the members find each other in a real DNS server's
// _mcollective-broker._tcp records and form a full mesh. A domain without
// the records, or no DNS at all, leaves a broker running alone.
func TestClusterPeersFromSRV(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	const n = 3
	ports := make([]int, n)
	var records []testutil.SRV
	for i := range ports {
		ports[i] = testutil.FreePort(t)
		records = append(records, testutil.SRV{Name: "_mcollective-broker._tcp.example.net", Target: "localhost", Port: ports[i], Priority: 10, Weight: 5})
	}
	dns := testutil.DNS(t, "example.net", records...)

	var bs []*Broker
	var logs []*syncBuffer
	for i := range n {
		cfg := p.member(t, i+1, nil, ports[i]) // broker<i>.example.net: the SRV domain is its own
		cfg.UseSRV = true
		b, l := startBrokerDNS(t, cfg, dns)
		bs, logs = append(bs, b), append(logs, l)
	}
	waitRoutes(t, bs, n-1, logs)

	t.Run("no records in the domain", func(t *testing.T) {
		cfg := p.member(t, 4, nil, testutil.FreePort(t))
		cfg.UseSRV, cfg.SRVDomain = true, "other.example.net"
		b, l := startBrokerDNS(t, cfg, dns)
		if b.ClusterAddr() != nil || len(l.lines("cannot look up cluster peers")) != 0 {
			t.Fatalf("NXDOMAIN: cluster %v, want a single broker without a warning\n%s", b.ClusterAddr(), l)
		}
	})
	t.Run("DNS down", func(t *testing.T) {
		cfg := p.member(t, 5, nil, testutil.FreePort(t))
		cfg.UseSRV = true
		b, l := startBrokerDNS(t, cfg, testutil.Resolver(fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))))
		if b.ClusterAddr() != nil || len(l.lines("cannot look up cluster peers", "_mcollective-broker._tcp.example.net")) != 1 {
			t.Fatalf("no DNS: cluster %v, want a single broker and one warning naming the record\n%s", b.ClusterAddr(), l)
		}
		if bs[0].Routes() != n-1 {
			t.Fatalf("the cluster has %d routes", bs[0].Routes())
		}
	})
}
