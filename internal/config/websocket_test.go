package config

import (
	"strings"
	"testing"
)

func TestWebsocketSettings(t *testing.T) {
	c, err := Parse("broker.conf", []byte("plugin.choria.network.websocket_port = 4443\nplugin.choria.network.websocket_advertise = ws.example.net:443\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.WebsocketPort != 4443 || c.Network.WebsocketAdvertise != "ws.example.net:443" || len(c.Unsupported) != 0 {
		t.Errorf("port %d advertise %q unsupported %+v", c.Network.WebsocketPort, c.Network.WebsocketAdvertise, c.Unsupported)
	}
	if Default().Network.WebsocketPort != 0 {
		t.Error("websockets on by default")
	}
	for name, tc := range map[string]struct{ conf, want string }{
		"advertise a URL": {"plugin.choria.network.websocket_port = 4443\nplugin.choria.network.websocket_advertise = wss://ws.example.net:443\n",
			`broker.conf:2: plugin.choria.network.websocket_advertise = "wss://ws.example.net:443": not host:port, such as nats1.example.net:443`},
		"advertise without a port": {"plugin.choria.network.websocket_advertise = ws.example.net:443\n",
			`broker.conf:1: plugin.choria.network.websocket_advertise: set without plugin.choria.network.websocket_port, so nothing would use it`},
		"client port": {"plugin.choria.network.websocket_port = 4222\n",
			`broker.conf:1: plugin.choria.network.websocket_port: 4222 is also plugin.choria.network.client_port; every listener needs a port of its own`},
		"stats port": {"plugin.choria.network.websocket_port = 8222\n",
			`broker.conf:1: plugin.choria.network.websocket_port: 8222 is also plugin.choria.stats_port`},
		"peer port": {"plugin.choria.network.peers = a, b\nplugin.choria.network.websocket_port = 4223\n",
			`broker.conf:2: plugin.choria.network.websocket_port: 4223 is also plugin.choria.network.peer_port`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("broker.conf", []byte(tc.conf))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
	// Listeners on different addresses may share a number.
	if _, err := Parse("broker.conf", []byte("plugin.choria.network.listen_address = 192.0.2.7\nplugin.choria.network.websocket_port = 8222\n")); err != nil {
		t.Error(err)
	}
}
