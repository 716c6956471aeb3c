package stats_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// A hub and a leaf run as `choria-broker run` does: /metrics carries
// go-choria's per-link leafnode gauges and ours for the remotes; the
// status page lists the link on both, a remote whose hub is down, and the
// leaf's health turns amber naming it.
func TestLeafnodeMetricsAndPage(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	hubCfg, leafCfg := devbroker.LeafConfigs(t, env)
	hubCfg.StatsPort, leafCfg.StatsPort = -1, -1
	leafCfg.Network.LeafnodeRemotes = append(leafCfg.Network.LeafnodeRemotes, "dc2")
	leafCfg.Raw[config.LeafRemotePrefix+"dc2.url"] = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)) // nothing listens
	hub := run(t, env, hubCfg)
	leaf := run(t, env, leafCfg)
	waitFor(t, 20*time.Second, "the leafnode link", func() bool { return len(hub.r.Network.Leafnodes().Links) == 1 })
	waitFor(t, 20*time.Second, "the link's RTT", func() bool { return hub.r.Network.Leafnodes().Links[0].RTT > 0 })

	m := get(t, hub.base+"/metrics")
	hubID, leafID := `identity="hub.example.net"`, `identity="leaf1.example.net"`
	link := hub.r.Network.Leafnodes().Links[0]
	linkLabels := []string{`account="$G"`, `host="127.0.0.1"`, hubID, fmt.Sprintf(`port="%d"`, link.Port)}
	for _, name := range []string{"rtt_ms", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "subscriptions"} {
		if _, ok := metric(m, "choria_network_leafnode_"+name, linkLabels...); !ok {
			t.Errorf("no choria_network_leafnode_%s%v in /metrics", name, linkLabels)
		}
	}
	if v, _ := metric(m, "choria_network_leafnode_rtt_ms", linkLabels...); v <= 0 {
		t.Errorf("rtt_ms %v", v)
	}
	for name, want := range map[string]float64{"choria_network_leafnode_remotes": 1, "choria_broker_leafnode_remotes_expected": 0, "choria_broker_leafnode_remotes_up": 0} {
		if v, ok := metric(m, name, hubID); !ok || v != want {
			t.Errorf("hub %s = %v (%v), want %v", name, v, ok, want)
		}
	}
	if v, ok := metric(m, "choria_broker_refused_leafnodes_total", hubID, `reason="not a leafnode broker"`); !ok || v != 0 {
		t.Errorf("refused leafnodes %v %v", v, ok)
	}
	if v, ok := metric(m, "choria_broker_connections_by_role", hubID, `role="leafnode"`); !ok || v != 1 {
		t.Errorf("leafnode role count %v %v", v, ok)
	}
	lm := get(t, leaf.base+"/metrics")
	for name, want := range map[string]float64{"choria_broker_leafnode_remotes_expected": 2, "choria_broker_leafnode_remotes_up": 1, "choria_network_leafnode_remotes": 1} {
		if v, ok := metric(lm, name, leafID); !ok || v != want {
			t.Errorf("leaf %s = %v (%v), want %v", name, v, ok, want)
		}
	}

	page := get(t, hub.base+"/")
	if got := elementText(page, "leaf-port"); got != fmt.Sprintf("port %d: admits leafnode_brokers", hubCfg.Network.LeafnodePort) {
		t.Errorf("hub: leaf-port %q", got)
	}
	if n := strings.Count(page, `class="leaf-link"`); n != 1 || !strings.Contains(page, "<td>leaf in</td><td>leaf1.example.net</td>") {
		t.Errorf("hub: %d link rows\n%s", n, page)
	}
	if got := elementText(page, "health-level"); got != "green" {
		t.Errorf("hub health %s", got)
	}
	page = get(t, leaf.base+"/")
	if a, b := elementText(page, "leaf-remote-hub"), elementText(page, "leaf-remote-dc2"); a != "up" || b != "down" {
		t.Errorf("leaf: remotes hub %q dc2 %q", a, b)
	}
	if !strings.Contains(page, "<td>to hub hub</td><td>hub.example.net</td>") {
		t.Errorf("leaf: no link row to the hub\n%s", page)
	}
	if got := elementText(page, "health-level"); got != "amber" || !strings.Contains(page, "leafnode remote dc2 is not connected to its hub") {
		t.Errorf("leaf health %s\n%s", got, elementText(page, "health-reasons"))
	}
}
