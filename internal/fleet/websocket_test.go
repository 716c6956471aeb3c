package fleet

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// Emulated nodes and the fleet ping work over wss:// with their client
// certificates, as go-choria's middleware_hosts = wss://host:port do; a
// node certificate pinging over websocket is still refused a client's
// rights.
func TestWebsocketFleet(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StatsPort = 0
	cfg.Network.WebsocketPort = testutil.FreePort(t)
	b := devbroker.StartConfig(t, env, cfg)
	wss := []string{b.WebsocketURL()}
	if !strings.HasPrefix(wss[0], "wss://127.0.0.1:") {
		t.Fatalf("websocket URL %q", wss[0])
	}
	e := startFleet(t, env, 20, func(o *EmulatorOptions) { o.Servers = wss })
	if n := b.WebsocketByRole()["node"]; n != 20 {
		t.Fatalf("%d nodes on the websocket listener, want 20", n)
	}

	// The client's file names the broker as go-choria's would.
	f, err := os.OpenFile(env.ClientConf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("plugin.choria.middleware_hosts = " + wss[0] + "\n")
	f.Close()
	c := credentials(t, env.ClientConf, false)
	if !slices.Equal(c.Servers, wss) {
		t.Fatalf("servers %v from middleware_hosts, want %v", c.Servers, wss)
	}
	res, err := Ping(context.Background(), PingOptions{Servers: c.Servers, Cert: c.Cert, CA: c.CA, Timeout: 10 * time.Second, Expect: 20, RPC: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Missing(e.Identities()); len(m) > 0 {
		t.Fatalf("no reply over websocket from %v", m)
	}

	node := devbroker.KeyPair(t, env, env.PKI.Nodes[0])
	_, err = Ping(context.Background(), PingOptions{Servers: wss, Cert: node, CA: c.CA, Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "does not have the client role") {
		t.Fatalf("ping over websocket with a node certificate: %v; want the broker's refusal explained", err)
	}
}
