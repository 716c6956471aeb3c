package fleet

import (
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// TestFleetAcrossLeafnode: 500 emulated nodes on a leaf broker answer a
// ping from a client on its hub; then 500 more on the hub, and a ping
// from a client on the leaf gets all 1 000, from both sides of the link.
func TestFleetAcrossLeafnode(t *testing.T) {
	if testing.Short() {
		t.Skip("1 000 TLS connections")
	}
	t.Parallel()
	const nodes = 500
	env := devbroker.Prepare(t)
	hubCfg, leafCfg := devbroker.LeafConfigs(t, env)
	hub := devbroker.StartConfig(t, env, hubCfg)
	leaf := devbroker.StartConfig(t, env, leafCfg)
	devbroker.WaitLeafLinks(t, []*devbroker.Broker{hub, leaf}, 1, 20*time.Second)

	onLeaf := startFleet(t, env, nodes, func(o *EmulatorOptions) {
		o.Servers = []string{leaf.URL()}
		o.IdentityPattern = "leafnode-%d.example.net"
	})
	res := ping(t, env, func(o *PingOptions) { o.Servers = []string{hub.URL()}; o.Expect = nodes; o.Timeout = 20 * time.Second })
	if missing := res.Missing(onLeaf.Identities()); len(missing) != 0 || len(res.Names()) != nodes {
		t.Fatalf("a ping from the hub: %d replies, %d of the leaf's nodes missing", len(res.Names()), len(missing))
	}
	s := res.Summarise()
	t.Logf("hub → leaf: %d replies, p50 %s p99 %s", s.Count, s.P50, s.P99)

	onHub := startFleet(t, env, nodes, func(o *EmulatorOptions) {
		o.Servers = []string{hub.URL()}
		o.IdentityPattern = "hubnode-%d.example.net"
	})
	res = ping(t, env, func(o *PingOptions) {
		o.Servers = []string{leaf.URL()}
		o.Expect = 2 * nodes
		o.Timeout = 20 * time.Second
	})
	if m1, m2 := res.Missing(onHub.Identities()), res.Missing(onLeaf.Identities()); len(m1)+len(m2) != 0 {
		t.Fatalf("a ping from the leaf: %d of the hub's nodes and %d of its own missing", len(m1), len(m2))
	}
	s = res.Summarise()
	t.Logf("leaf → hub and leaf: %d replies, p50 %s p99 %s", s.Count, s.P50, s.P99)
}
