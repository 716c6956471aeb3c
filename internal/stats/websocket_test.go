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

// With websocket_port set, the metrics count websocket connections by
// role and the status page shows how many there are.
func TestWebsocketMetrics(t *testing.T) {
	t.Parallel()
	f := start(t, func(c *config.Config) { c.Network.WebsocketPort = testutil.FreePort(t) })
	nc, err := nats.Connect(f.r.Network.WebsocketURL(), nats.Secure(devbroker.TLS(t, f.env, f.env.PKI.Nodes[0])), nats.Timeout(5*time.Second), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	f.connect(t, f.env.PKI.Client) // on the client port
	waitFor(t, 5*time.Second, "2 clients", func() bool { return f.r.Network.NumClients() == 2 })

	id := f.r.Network.Engine().Name()
	m := get(t, f.base+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`choria_broker_websocket_connections{identity=%q,role="node"} 1`, id),
		fmt.Sprintf(`choria_broker_websocket_connections{identity=%q,role="client"} 0`, id),
		fmt.Sprintf(`choria_broker_connections_by_role{identity=%q,role="node"} 1`, id),
		fmt.Sprintf(`choria_broker_connections_by_role{identity=%q,role="client"} 1`, id),
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	page := get(t, f.base+"/")
	if got := elementText(page, "websocket-connections"); got != "1" || !strings.Contains(page, f.r.Network.WebsocketURL()) {
		t.Errorf("page #websocket-connections = %q, want 1 (and the listener's URL)", got)
	}
}
