package broker_test

import (
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// Members gossip their websocket address to websocket clients, as they do
// their client address: websocket_advertise, else identity:websocket_port,
// the name on the certificate.
func TestWebsocketClusterAdvertise(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfgs := devbroker.ClusterConfigs(t, env, 2)
	for _, c := range cfgs {
		c.Network.WebsocketPort = testutil.FreePort(t)
	}
	cfgs[1].Network.WebsocketAdvertise = "ws2.example.net:443"
	var bs []*devbroker.Broker
	for _, c := range cfgs {
		bs = append(bs, devbroker.StartConfig(t, env, c))
	}
	devbroker.WaitRoutes(t, bs, 1, 20*time.Second)
	for i, want := range []string{"wss://ws2.example.net:443", "wss://" + net.JoinHostPort(cfgs[0].Identity, strconv.Itoa(cfgs[0].Network.WebsocketPort))} {
		nc, err := nats.Connect(bs[i].WebsocketURL(), nats.Secure(devbroker.TLS(t, env, env.PKI.Client)), nats.Timeout(5*time.Second), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Contains(nc.DiscoveredServers(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("member %d gossips %v over websocket, want %s", i+1, nc.DiscoveredServers(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
