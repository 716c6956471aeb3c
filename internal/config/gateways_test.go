package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestGatewaysRead(t *testing.T) {
	c, err := Parse("b.conf", []byte(`plugin.choria.network.gateway_name = EAST
plugin.choria.network.gateway_port = 7222
plugin.choria.network.gateway_remotes = WEST, OLD
plugin.choria.network.gateway_remote.WEST.urls = gw1.west.example.net:7222, nats://10.0.0.2:7222
plugin.choria.network.gateway_remote.WEST.tls.ca = /etc/west/ca.pem
plugin.choria.network.gateway_remote.WEST.tls.verify = yes
plugin.choria.network.gateway_remote.OLD.urls = old.example.net:7222
plugin.choria.network.gateway_remote.OLD.tls.disable = on
plugin.choria.network.gateway_brokers = ^gw\d+\.
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []GatewayRemote{
		{Name: "WEST", URLs: []string{"nats://gw1.west.example.net:7222", "nats://10.0.0.2:7222"}, TLS: RemoteTLS{CA: "/etc/west/ca.pem"}},
		{Name: "OLD", URLs: []string{"nats://old.example.net:7222"}, TLS: RemoteTLS{Disable: true}},
	}
	if !reflect.DeepEqual(c.Network.Gateways, want) {
		t.Errorf("got %+v\nwant %+v", c.Network.Gateways, want)
	}
	if c.Network.GatewayPort != 7222 || !reflect.DeepEqual(c.Network.GatewayBrokers, []string{`^gw\d+\.`}) {
		t.Errorf("port %d brokers %q", c.Network.GatewayPort, c.Network.GatewayBrokers)
	}
	if len(c.Unsupported) != 0 || len(c.Warnings) != 0 || len(c.Unknown) != 0 {
		t.Errorf("reported: %+v %q %q", c.Unsupported, c.Warnings, c.Unknown)
	}
}

// Each mistake is named with its file:line and what to do.
func TestGatewaysErrors(t *testing.T) {
	const base = "plugin.choria.network.gateway_port = 7222\nplugin.choria.network.gateway_remotes = WEST\n"
	for _, tc := range []struct{ name, conf, want string }{
		{"unknown property", base + "plugin.choria.network.gateway_remote.WEST.url = a:1\n",
			`b.conf:3: plugin.choria.network.gateway_remote.WEST.url: unknown gateway remote setting "url"; a gateway remote has urls, tls.cert`},
		{"not listed", base + "plugin.choria.network.gateway_remote.WEST.urls = a:1\nplugin.choria.network.gateway_remote.EAST.urls = b:1\n",
			`b.conf:4: plugin.choria.network.gateway_remote.EAST.urls: gateway remote "EAST" is not in plugin.choria.network.gateway_remotes`},
		{"no port", base + "plugin.choria.network.gateway_remote.WEST.urls = a.example.net\n",
			`b.conf:3: plugin.choria.network.gateway_remote.WEST.urls = "a.example.net": "a.example.net" has no port (1-65535)`},
		{"scheme", base + "plugin.choria.network.gateway_remote.WEST.urls = tls://a:7222\n",
			`b.conf:3: plugin.choria.network.gateway_remote.WEST.urls = "tls://a:7222": "tls://a:7222": a gateway URL is nats://host:port`},
		{"password in url", base + "plugin.choria.network.gateway_remote.WEST.urls = nats://u:p@a:7222\n",
			`carries a user name or password`},
		{"boolean typo", base + "plugin.choria.network.gateway_remote.WEST.urls = a:1\nplugin.choria.network.gateway_remote.WEST.tls.disable = ture\n",
			`b.conf:4: plugin.choria.network.gateway_remote.WEST.tls.disable = "ture": not a boolean`},
		{"no urls", base,
			`b.conf:2: plugin.choria.network.gateway_remotes: remote WEST has no plugin.choria.network.gateway_remote.WEST.urls`},
		{"no port set", "plugin.choria.network.gateway_remotes = WEST\nplugin.choria.network.gateway_remote.WEST.urls = a:1\n",
			`b.conf:1: plugin.choria.network.gateway_remotes: set without plugin.choria.network.gateway_port`},
		{"own name", "plugin.choria.network.gateway_name = WEST\n" + base + "plugin.choria.network.gateway_remote.WEST.urls = a:1\n",
			`b.conf:3: plugin.choria.network.gateway_remotes: "WEST" is this cluster's own name (plugin.choria.network.gateway_name at b.conf:1)`},
		{"default name clash", base + "plugin.choria.network.gateway_remotes = CHORIA\nplugin.choria.network.gateway_remote.CHORIA.urls = a:1\n",
			`b.conf:3: plugin.choria.network.gateway_remotes: "CHORIA" is this cluster's own name (plugin.choria.network.gateway_name);`},
		{"bad name", "plugin.choria.network.gateway_remotes = WE ST\n",
			`b.conf:1: plugin.choria.network.gateway_remotes = "WE ST": remote "WE ST" may only contain`},
		{"twice", "plugin.choria.network.gateway_remotes = A, A\n",
			`remote "A" is listed twice`},
		{"cert without key", base + "plugin.choria.network.gateway_remote.WEST.urls = a:1\nplugin.choria.network.gateway_remote.WEST.tls.cert = /c.pem\n",
			`b.conf:4: plugin.choria.network.gateway_remote.WEST.tls.cert: set without plugin.choria.network.gateway_remote.WEST.tls.key`},
		{"plain with TLS settings", base + "plugin.choria.network.gateway_remote.WEST.urls = a:1\nplugin.choria.network.gateway_remote.WEST.tls.disable = yes\nplugin.choria.network.gateway_remote.WEST.tls.ca = /ca.pem\n",
			`b.conf:4: plugin.choria.network.gateway_remote.WEST.tls.disable: plaintext leaves no use for`},
		{"bad pattern", "plugin.choria.network.gateway_brokers = a(\n",
			`b.conf:1: plugin.choria.network.gateway_brokers = "a(": "a(" is not a valid regular expression`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("b.conf", []byte(tc.conf))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant …%s…", err, tc.want)
			}
		})
	}
}

// gateway_brokers without a gateway port does nothing, and says so.
func TestGatewayBrokersWithoutPort(t *testing.T) {
	c, err := Parse("b.conf", []byte("plugin.choria.network.gateway_brokers = ^gw\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "b.conf:1: plugin.choria.network.gateway_brokers: set without plugin.choria.network.gateway_port") {
		t.Errorf("warnings %q", c.Warnings)
	}
}
