package stats_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// TestGatewaysMonitoring: EAST links with WEST and lists NORTH, which does
// not run. Metrics give both links with WEST and the messages sent over
// them, NORTH down; the status page shows the same and health is amber.
func TestGatewaysMonitoring(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfgs := devbroker.ClusterConfigs(t, env, 2)
	ports := []int{testutil.FreePort(t), testutil.FreePort(t)}
	names := []string{"EAST", "WEST"}
	for i, cfg := range cfgs {
		other := 1 - i
		cfg.Network.Peers = nil
		cfg.Network.ClusterName, cfg.Network.GatewayPort = names[i], ports[i]
		cfg.Network.GatewayRemotes = []string{names[other]}
		cfg.Network.Gateways = []config.GatewayRemote{{Name: names[other], URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", ports[other])}}}
	}
	cfgs[0].Network.GatewayRemotes = append(cfgs[0].Network.GatewayRemotes, "NORTH")
	cfgs[0].Network.Gateways = append(cfgs[0].Network.Gateways, config.GatewayRemote{Name: "NORTH", URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", testutil.FreePort(t))}})
	cfgs[0].StatsPort = -1
	west := devbroker.StartConfig(t, env, cfgs[1])
	f := run(t, env, cfgs[0])
	east := f.r.Network

	waitFor(t, 20*time.Second, "links both ways with WEST", func() bool {
		for _, l := range east.GatewayStatus().Links {
			if l.Cluster == "WEST" {
				return l.Outbound != nil && len(l.Inbound) == 1
			}
		}
		return false
	})
	admin := devbroker.IssueTLS(t, env, "admin.privileged.mcollective")
	sub, err := nats.Connect(west.ClientURL(), nats.Secure(admin), nats.Timeout(5*time.Second), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := nats.Connect(east.ClientURL(), nats.Secure(admin), nats.Timeout(5*time.Second), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	s, err := sub.SubscribeSync("east.to.west")
	if err != nil {
		t.Fatal(err)
	}
	sub.Flush()
	got := 0
	deadline := time.Now().Add(10 * time.Second)
	for got < 10 && time.Now().Before(deadline) {
		pub.Publish("east.to.west", []byte("x"))
		pub.Flush()
		if _, err := s.NextMsg(200 * time.Millisecond); err == nil {
			got++
		}
	}
	if got < 10 {
		t.Fatalf("%d messages crossed the gateway", got)
	}

	id := `identity="broker1.example.net"`
	metrics := get(t, f.base+"/metrics")
	for _, want := range []string{
		`choria_network_gateway_remotes{` + id + `} 1`,
		`choria_network_gateway_links{cluster="WEST",direction="outbound",` + id + `} 1`,
		`choria_network_gateway_links{cluster="WEST",direction="inbound",` + id + `} 1`,
		`choria_network_gateway_links{cluster="NORTH",direction="outbound",` + id + `} 0`,
		`choria_network_gateway_rtt_ms{cluster="WEST",` + id + `} `,
		`choria_broker_refused_gateways_total{` + id + `,reason="not a gateway"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	var sent float64
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, `choria_network_gateway_out_msgs{cluster="WEST",direction="outbound",`) {
			fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &sent)
		}
	}
	if sent < 10 {
		t.Errorf("out_msgs over the outbound link to WEST = %v, want at least the 10 that crossed", sent)
	}

	page := get(t, f.base+"/")
	for _, want := range []string{
		`id="gateways-self">cluster <strong>EAST</strong>`, "mutual TLS",
		`id="gateway-WEST-out">up<`, `id="gateway-WEST-in">1<`, `id="gateway-NORTH-out"><strong>down</strong>`,
		`data-level="amber"`, "no gateway link to NORTH", `href="/gatewayz"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %s", want)
		}
	}

	// The Gateways table fits the page's narrowest width, in real Chromium.
	t.Run("chromium", func(t *testing.T) {
		measureLayout(t, newBrowser(t, testutil.RequireProgram(t, "chromium")), page, 800, 1200)
	})
}
