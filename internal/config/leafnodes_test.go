package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

func TestLeafRemotes(t *testing.T) {
	c, err := Parse("broker.conf", []byte(`plugin.choria.network.leafnode_port = 7422
plugin.choria.network.leafnode_brokers = ^leaf\d+\.example\.net$
plugin.choria.network.leafnode_remotes = hub, edge
plugin.choria.network.leafnode_remote.hub.url = hub1.example.net:7422, tls://hub2.example.net, nats-leaf://[::1]:7000
plugin.choria.network.leafnode_remote.hub.account = choria
plugin.choria.network.leafnode_remote.hub.tls.verify = yes
plugin.choria.network.leafnode_remote.edge.url = wss://edge.example.net/leafnode
plugin.choria.network.leafnode_remote.edge.credentials = /etc/choria/edge.creds
plugin.choria.network.leafnode_remote.edge.tls.cert = /etc/choria/edge.pem
plugin.choria.network.leafnode_remote.edge.tls.key = /etc/choria/edge.key
plugin.choria.network.leafnode_remote.edge.tls.ca = /etc/choria/edge-ca.pem
plugin.choria.network.leafnode_remote.edge.tls.verify = off
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Unsupported) != 0 || len(c.Unknown) != 0 || len(c.Warnings) != 0 {
		t.Fatalf("reported: %+v %q %q", c.Unsupported, c.Unknown, c.Warnings)
	}
	if c.Network.LeafnodePort != 7422 || !slices.Equal(c.Network.LeafnodeBrokers, []string{`^leaf\d+\.example\.net$`}) {
		t.Fatalf("port %d brokers %q", c.Network.LeafnodePort, c.Network.LeafnodeBrokers)
	}
	rs, err := c.LeafRemotes()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d remotes, want 2", len(rs))
	}
	var urls []string
	for _, u := range rs[0].URLs {
		urls = append(urls, u.String())
	}
	if want := []string{"leafnode://hub1.example.net:7422", "tls://hub2.example.net:7422", "nats-leaf://[::1]:7000"}; rs[0].Name != "hub" || !slices.Equal(urls, want) {
		t.Errorf("hub: %s %q, want %q", rs[0].Name, urls, want)
	}
	if !rs[0].TLSVerify || rs[0].TLSDisable || rs[0].TLSCert != "" || rs[0].Credentials != "" {
		t.Errorf("hub: %+v", rs[0])
	}
	e := rs[1]
	if e.URLs[0].String() != "wss://edge.example.net/leafnode" || e.Credentials != "/etc/choria/edge.creds" || e.TLSCert != "/etc/choria/edge.pem" ||
		e.TLSKey != "/etc/choria/edge.key" || e.TLSCA != "/etc/choria/edge-ca.pem" || e.TLSVerify || e.TLSDisable {
		t.Errorf("edge: %+v", e)
	}
	if e.Key("tls.ca") != "plugin.choria.network.leafnode_remote.edge.tls.ca" {
		t.Errorf("key %s", e.Key("tls.ca"))
	}
}

// Every mistake in the remotes is reported at once, each naming the key
// and its file:line, never a password.
func TestLeafRemotesErrors(t *testing.T) {
	c, err := Parse("broker.conf", []byte(`plugin.choria.network.leafnode_remotes = a, b, c, d, e, f
plugin.choria.network.leafnode_remote.a.account = choria
plugin.choria.network.leafnode_remote.b.url = ftp://hub.example.net:21
plugin.choria.network.leafnode_remote.c.url = nats-leaf://leaf:s3cret@hub.example.net:99999
plugin.choria.network.leafnode_remote.d.url = hub.example.net:7422, ws://hub.example.net
plugin.choria.network.leafnode_remote.d.account = ops
plugin.choria.network.leafnode_remote.e.url = hub.example.net
plugin.choria.network.leafnode_remote.e.tls.verify = flase
plugin.choria.network.leafnode_remote.e.tls.cert = /etc/e.pem
plugin.choria.network.leafnode_remote.f.url = hub.example.net/path
plugin.choria.network.leafnode_remote.f.tls.disable = true
plugin.choria.network.leafnode_remote.f.tls.ca = /etc/ca.pem
plugin.choria.network.leafnode_remote.g.url = hub.example.net
plugin.choria.network.leafnode_remote.a.tls.verfy = true
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.LeafRemotes()
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"broker.conf:1: plugin.choria.network.leafnode_remotes: remote a has no plugin.choria.network.leafnode_remote.a.url; set it to the hub's leafnode port",
		`broker.conf:3: plugin.choria.network.leafnode_remote.b.url = "ftp://hub.example.net:21": not host:port or a leafnode://, nats-leaf://, tls://, ws:// or wss:// URL; unknown scheme ftp`,
		`broker.conf:4: plugin.choria.network.leafnode_remote.c.url = "nats-leaf://leaf:xxxxx@hub.example.net:99999": not host:port`,
		`broker.conf:5: plugin.choria.network.leafnode_remote.d.url = "hub.example.net:7422, ws://hub.example.net": mixes websocket`,
		`broker.conf:6: plugin.choria.network.leafnode_remote.d.account = "ops": this broker carries all Choria traffic in one account, which go-choria calls choria`,
		`broker.conf:8: plugin.choria.network.leafnode_remote.e.tls.verify = "flase": not a boolean`,
		"broker.conf:9: plugin.choria.network.leafnode_remote.e.tls.cert: set without plugin.choria.network.leafnode_remote.e.tls.key",
		`broker.conf:10: plugin.choria.network.leafnode_remote.f.url = "hub.example.net/path": not host:port or a leafnode://, nats-leaf://, tls://, ws:// or wss:// URL; a leafnode URL has no path`,
		"broker.conf:12: plugin.choria.network.leafnode_remote.f.tls.ca: set while plugin.choria.network.leafnode_remote.f.tls.disable = true turns TLS off on this link",
		"broker.conf:14: plugin.choria.network.leafnode_remote.a.tls.verfy: unknown leafnode remote setting tls.verfy; a remote has url, account, credentials, tls.cert",
		"broker.conf:13: plugin.choria.network.leafnode_remote.g.url: remote g is not in plugin.choria.network.leafnode_remotes, so this setting would be ignored",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for _, w := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
			t.Errorf("no error starting %q in:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a password is shown:\n%v", err)
	}

	// A remote name becomes part of keys: no dots.
	_, err = Parse("broker.conf", []byte("plugin.choria.network.leafnode_remotes = eu.hub\n"))
	if err == nil || !strings.HasPrefix(err.Error(), `broker.conf:1: plugin.choria.network.leafnode_remotes = "eu.hub": remote "eu.hub" may only contain letters, digits`) {
		t.Errorf("dotted name: %v", err)
	}
	_, err = Parse("broker.conf", []byte("plugin.choria.network.stream.domain = hub.eu\n"))
	if err == nil || !strings.HasPrefix(err.Error(), `broker.conf:1: plugin.choria.network.stream.domain = "hub.eu": may only contain letters, digits`) {
		t.Errorf("dotted domain: %v", err)
	}
}

func TestLeafRemoteFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.creds")
	if err := os.WriteFile(good, userCreds(t), 0o600); err != nil {
		t.Fatal(err)
	}
	notCreds := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notCreds, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := strings.Join([]string{
		"plugin.choria.network.leafnode_remotes = ok, missing, wrong, dir",
		"plugin.choria.network.leafnode_remote.ok.url = hub:7422",
		"plugin.choria.network.leafnode_remote.ok.credentials = " + good,
		"plugin.choria.network.leafnode_remote.ok.tls.ca = " + notCreds,
		"plugin.choria.network.leafnode_remote.missing.url = hub:7422",
		"plugin.choria.network.leafnode_remote.missing.credentials = " + filepath.Join(dir, "nope.creds"),
		"plugin.choria.network.leafnode_remote.wrong.url = hub:7422",
		"plugin.choria.network.leafnode_remote.wrong.credentials = " + notCreds,
		"plugin.choria.network.leafnode_remote.dir.url = hub:7422",
		"plugin.choria.network.leafnode_remote.dir.tls.ca = " + dir,
	}, "\n")
	c, err := Parse("broker.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.LeafRemotes()
	if err != nil {
		t.Fatal(err)
	}
	err = c.LeafRemoteFiles(rs)
	want := []string{
		"broker.conf:6: plugin.choria.network.leafnode_remote.missing.credentials = \"" + filepath.Join(dir, "nope.creds") + "\": no such file; check the path",
		"broker.conf:8: plugin.choria.network.leafnode_remote.wrong.credentials = \"" + notCreds + "\": not a NATS credentials file",
		"broker.conf:10: plugin.choria.network.leafnode_remote.dir.tls.ca = \"" + dir + "\": not a regular file",
	}
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if i < len(lines) && !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d:\n got %s\nwant %s…", i, lines[i], w)
		}
	}
	if c.LeafRemoteFiles(rs[:1]) != nil {
		t.Errorf("a good credentials file refused: %v", c.LeafRemoteFiles(rs[:1]))
	}
}

// userCreds is a .creds file as nsc writes it: a user JWT signed by an
// account, and the user's seed.
func userCreds(t *testing.T) []byte {
	t.Helper()
	account, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	token, err := jwt.NewUserClaims(pub).Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}
