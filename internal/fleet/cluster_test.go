package fleet

import (
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// TestFleetOnCluster spreads 3 000 emulated nodes over a 3-member cluster:
// a client on one member pings them all; with one member killed its nodes
// move to the others and every node answers again; restarted, the member
// rejoins and serves new connections.
func TestFleetOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("3 000 TLS connections")
	}
	const nodes = 3000
	env := devbroker.Prepare(t)
	cfgs := devbroker.ClusterConfigs(t, env, 3)
	var bs []*devbroker.Broker
	var urls []string
	for _, cfg := range cfgs {
		b := devbroker.StartConfig(t, env, cfg)
		bs = append(bs, b)
		urls = append(urls, b.URL())
	}
	devbroker.WaitRoutes(t, bs, 2, 30*time.Second)

	start := time.Now()
	e := startFleet(t, env, nodes, func(o *EmulatorOptions) { o.Servers = urls })
	t.Logf("%d nodes connected in %s", nodes, time.Since(start).Round(time.Millisecond))
	for _, b := range bs {
		if b.NumClients() == 0 {
			t.Fatalf("%s holds no nodes: the fleet did not spread", b.Config.Identity)
		}
		t.Logf("%s holds %d nodes", b.Config.Identity, b.NumClients())
	}
	pingVia := func(url string, timeout time.Duration) *PingResult {
		return ping(t, env, func(o *PingOptions) { o.Servers = []string{url}; o.Expect = nodes; o.Timeout = timeout })
	}
	res := pingVia(bs[0].URL(), 20*time.Second)
	if missing := res.Missing(e.Identities()); len(missing) != 0 {
		t.Fatalf("%d nodes missing from a ping through one member", len(missing))
	}
	s := res.Summarise()
	t.Logf("ping via one member: %d replies p50 %s p99 %s", s.Count, s.P50, s.P99)

	killed := time.Now()
	moved := bs[1].NumClients()
	bs[1].Stop()
	deadline := killed.Add(120 * time.Second)
	for {
		if e.Stats().Connected == nodes {
			if r := pingVia(bs[0].URL(), 10*time.Second); len(r.Missing(e.Identities())) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after killing a member: %d/%d connected after 120s", e.Stats().Connected, nodes)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("killed member held %d nodes; every node answered again %s after the kill", moved, time.Since(killed).Round(time.Millisecond))
	if bs[0].NumClients()+bs[2].NumClients() < nodes {
		t.Fatalf("survivors hold %d+%d nodes", bs[0].NumClients(), bs[2].NumClients())
	}

	back := devbroker.StartConfig(t, env, cfgs[1])
	devbroker.WaitRoutes(t, []*devbroker.Broker{bs[0], back, bs[2]}, 2, 30*time.Second)
	if r := pingVia(back.URL(), 20*time.Second); len(r.Missing(e.Identities())) != 0 {
		t.Fatalf("a ping through the restarted member misses %d nodes", len(r.Missing(e.Identities())))
	}
}
