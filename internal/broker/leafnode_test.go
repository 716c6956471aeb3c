package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// leafPattern admits the tests' leaf brokers, leaf1.example.net and so on.
const leafPattern = `^leaf\d+\.example\.net$`

// named is a broker config with a certificate of its own for name (with
// localhost and 127.0.0.1), on p's CA, CRL and free ports.
func (p *testPKI) named(t testing.TB, name string) *config.Config {
	t.Helper()
	kp := p.issue(t, pki.IssueOptions{Name: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	p.write(t, name+".pem", pki.CertsPEM(kp.Chain...))
	p.writeKey(t, name+".key", kp)
	cfg := p.config()
	cfg.Identity = name
	cfg.Security.FileCertificate, cfg.Security.FileKey = p.path(name+".pem"), p.path(name+".key")
	return cfg
}

// leafHub is p's broker with a leafnode port that admits leafPattern.
func (p *testPKI) leafHub(t testing.TB) *config.Config {
	cfg := p.config()
	cfg.Network.LeafnodePort = testutil.FreePort(t)
	cfg.Network.LeafnodeBrokers = []string{leafPattern}
	return cfg
}

// dialHub adds a remote to cfg, as leafnode_remotes and leafnode_remote.NAME.* lines do.
func dialHub(cfg *config.Config, name, url string, props ...string) {
	cfg.Network.LeafnodeRemotes = append(cfg.Network.LeafnodeRemotes, name)
	cfg.Raw[config.LeafRemotePrefix+name+".url"] = url
	for i := 0; i+1 < len(props); i += 2 {
		cfg.Raw[config.LeafRemotePrefix+name+"."+props[i]] = props[i+1]
	}
}

func leafURL(cfg *config.Config) string {
	return fmt.Sprintf("127.0.0.1:%d", cfg.Network.LeafnodePort)
}

// waitLinks waits until b has want leafnode links up.
func waitLinks(t testing.TB, b *Broker, want int, logs ...fmt.Stringer) LeafStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := b.Leafnodes()
		if len(st.Links) == want {
			return st
		}
		if time.Now().After(deadline) {
			var all []string
			for _, l := range logs {
				all = append(all, l.String())
			}
			t.Fatalf("%s has %d leafnode links, want %d\n%s", b.cfg.Identity, len(st.Links), want, strings.Join(all, "\n----\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fileLog is a stock nats-server's log file, read when a test fails.
type fileLog string

func (f fileLog) String() string {
	data, _ := os.ReadFile(string(f))
	return string(data)
}

// connectStock connects, without TLS, to a stock nats-server's client port.
func connectStock(t testing.TB, port int) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port), nats.Timeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestLeafnodeHubAndLeaf links a leaf broker to a hub, both ours: a client
// on either side commands a node on the other and gets its reply, each
// connection with the role its own broker gives it.
func TestLeafnodeHubAndLeaf(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	hubCfg := p.leafHub(t)
	hub, hubLogs := startBroker(t, hubCfg)
	leafCfg := p.named(t, "leaf1.example.net")
	dialHub(leafCfg, "hub", leafURL(hubCfg))
	leaf, leafLogs := startBroker(t, leafCfg)

	st := waitLinks(t, leaf, 1, hubLogs, leafLogs)
	for deadline := time.Now().Add(5 * time.Second); len(leafLogs.lines("level=INFO", "leafnode link up", attr("remote", "hub"), attr("hub", "broker.example.net"))) != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the link coming up is not logged\n%s", leafLogs)
		}
	}
	if l := st.Links[0]; !l.Outbound || l.Remote != "hub" || l.Name != "broker.example.net" || l.Account != "$G" || !st.Remotes[0].Up {
		t.Errorf("leaf's view: %+v %+v", st.Remotes, l)
	}
	hst := waitLinks(t, hub, 1)
	if l := hst.Links[0]; l.Outbound || l.Name != "leaf1.example.net" || hst.Port != hubCfg.Network.LeafnodePort || !hst.Brokers {
		t.Errorf("hub's view: %+v", hst)
	}
	if n := hub.ConnectionsByRole()[leafRole]; n != 1 {
		t.Errorf("hub counts %d leafnodes", n)
	}
	if len(hubLogs.lines("leafnode admitted", "leaf1.example.net")) != 1 {
		t.Errorf("admission not logged\n%s", hubLogs)
	}

	for _, tc := range []struct {
		name               string
		clientOn, nodeOn   *Broker
		nodeLogs           *syncBuffer
		clientName, nodeID string
	}{
		{"client on the hub, node on the leaf", hub, leaf, leafLogs, "rip.mcollective", "node1.example.net"},
		{"client on the leaf, node on the hub", leaf, hub, hubLogs, "ops.mcollective", "node2.example.net"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := connectRole(t, tc.clientOn, p, p.issue(t, pki.IssueOptions{Name: tc.clientName}))
			node := connectRole(t, tc.nodeOn, p, p.issue(t, pki.IssueOptions{Name: tc.nodeID}))
			broadcast, direct := "mcollective.broadcast.agent.rpcutil", "mcollective.node."+tc.nodeID
			crossRoutes(t, client.Conn, node.Conn, broadcast)
			crossRoutes(t, client.Conn, node.Conn, direct)
			reply := replySubject(tc.clientName) + ".1"
			crossRoutes(t, node.Conn, client.Conn, reply)

			// The node's broker keeps it a node: its request goes nowhere.
			watcher := mustConnect(t, tc.clientOn.ClientURL(), p.adminTLS(t))
			sub, _ := watcher.SubscribeSync(broadcast)
			watcher.Flush()
			node.Publish(broadcast, []byte("forged"))
			node.Flush()
			if m, err := sub.NextMsg(500 * time.Millisecond); err == nil {
				t.Fatalf("a node's request crossed the link: %q", m.Data)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(tc.nodeLogs.lines("subject refused", "subject="+broadcast, "certificate="+tc.nodeID, "role=node")) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the node's request was not refused by its own broker\n%s", tc.nodeLogs)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestLeafnodeRefused: a node's certificate, a revoked one, and any
// certificate while leafnode_brokers is empty are refused as leafnodes,
// each logged with the reason and counted; an established leafnode is cut
// off when the CRL revokes it, and a leaf drops its hub when the hub's
// certificate is revoked.
func TestLeafnodeRefused(t *testing.T) {
	t.Parallel()
	t.Run("node certificate and revoked leaf", func(t *testing.T) {
		t.Parallel()
		p := newTestPKI(t)
		hubCfg := p.leafHub(t)
		// The revoked leaf's certificate is made before the hub starts.
		revokedCfg := p.named(t, "leaf2.example.net")
		rc, _ := pki.ReadCertificates(revokedCfg.Security.FileCertificate)
		p.ca.Revoke(rc[0])
		p.writeCRL(t)
		hub, hubLogs := startBroker(t, hubCfg)

		nodeCfg := p.named(t, "node1.example.net") // a node's certificate, dialling as a leaf
		dialHub(nodeCfg, "hub", leafURL(hubCfg))
		dialHub(revokedCfg, "hub", leafURL(hubCfg))
		for _, tc := range []struct {
			cfg    *config.Config
			reason pki.Reason
			log    []string
		}{
			{nodeCfg, pki.NotLeaf, []string{attr("reason", string(pki.NotLeaf)), "node1.example.net", "match no pattern of plugin.choria.network.leafnode_brokers", attr("pattern", `^node1\.example\.net$`)}},
			{revokedCfg, pki.Revoked, []string{attr("reason", string(pki.Revoked)), "leaf2.example.net"}},
		} {
			intruder, intruderLogs := startBroker(t, tc.cfg)
			deadline := time.Now().Add(15 * time.Second)
			for len(hubLogs.lines(append([]string{"leafnode refused"}, tc.log...)...)) == 0 || hub.LeafsRefused(string(tc.reason)) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%s: no refusal logged and counted\n%s", tc.cfg.Identity, hubLogs)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The refusal is logged once however often it retries.
			time.Sleep(2 * time.Second)
			if n := len(hubLogs.lines(append([]string{"leafnode refused"}, tc.log...)...)); n != 1 {
				t.Errorf("%s: refusal logged %d times", tc.cfg.Identity, n)
			}
			if n := len(intruder.Leafnodes().Links) + len(hub.Leafnodes().Links); n != 0 {
				t.Fatalf("%s: %d links", tc.cfg.Identity, n)
			}
			// The leaf says why, once, instead of the engine's "Read Error" every second.
			if n := len(intruderLogs.lines("level=WARN", "leafnode link closed by the hub right after TLS", "leafnode_brokers", attr("hub", "hub"))); n != 1 {
				t.Errorf("%s: the hub's refusal explained %d times\n%s", tc.cfg.Identity, n, intruderLogs)
			}
			if n := len(intruderLogs.lines("Leafnode connection closed: Read Error")); n != 0 {
				t.Errorf("%s: the engine's bare Read Error logged %d times", tc.cfg.Identity, n)
			}
			// Nor does the hub log each try: anyone may knock on the port.
			if n := len(hubLogs.lines("component=nats", "Leafnode connection")); n != 0 {
				t.Errorf("%s: the hub logged %d engine lines about refused leafnodes\n%s", tc.cfg.Identity, n, hubLogs)
			}
		}
	})

	t.Run("no leafnode_brokers", func(t *testing.T) {
		t.Parallel()
		p := newTestPKI(t)
		hubCfg := p.leafHub(t)
		hubCfg.Network.LeafnodeBrokers = nil
		hub, hubLogs := startBroker(t, hubCfg)
		if len(hubLogs.lines("level=WARN", "LEAFNODES ALL REFUSED", "plugin.choria.network.leafnode_brokers is empty")) != 1 {
			t.Fatalf("no warning at start\n%s", hubLogs)
		}
		leafCfg := p.named(t, "leaf1.example.net")
		dialHub(leafCfg, "hub", leafURL(hubCfg))
		startBroker(t, leafCfg)
		deadline := time.Now().Add(15 * time.Second)
		for len(hubLogs.lines("leafnode refused", "leaf1.example.net", "(none)", "fix=")) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no refusal\n%s", hubLogs)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(hub.Leafnodes().Links) != 0 {
			t.Fatal("a leafnode got in")
		}
	})

	for _, revoke := range []string{"leaf", "hub"} {
		t.Run("revoked while linked: "+revoke, func(t *testing.T) {
			t.Parallel()
			p := newTestPKI(t)
			hubCfg := p.leafHub(t)
			hub, hubLogs := startBroker(t, hubCfg)
			leafCfg := p.named(t, "leaf1.example.net")
			dialHub(leafCfg, "hub", leafURL(hubCfg))
			leaf, leafLogs := startBroker(t, leafCfg)
			waitLinks(t, hub, 1, hubLogs, leafLogs)
			for deadline := time.Now().Add(5 * time.Second); len(leafLogs.lines("leafnode link up")) == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the link coming up is not logged\n%s", leafLogs)
				}
			}

			victim, logs, line := leafCfg, hubLogs, "connection closed: its certificate was revoked"
			if revoke == "hub" {
				victim, logs, line = hubCfg, leafLogs, "leafnode link to the hub closed: its certificate was revoked"
			}
			certs, _ := pki.ReadCertificates(victim.Security.FileCertificate)
			p.ca.Revoke(certs[0])
			p.writeCRL(t)
			deadline := time.Now().Add(10 * time.Second)
			for len(logs.lines(line)) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("link not closed\n%s", logs)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// It stays down: every reconnection is refused.
			time.Sleep(2 * time.Second)
			if n := len(hub.Leafnodes().Links) + len(leaf.Leafnodes().Links); n != 0 {
				t.Fatalf("%d links after revocation\n%s", n, logs)
			}
			if hub.LeafsRefused(string(pki.Revoked))+leaf.LeafsRefused(string(pki.Revoked)) == 0 {
				t.Error("the reconnections refused are not counted")
			}
			if len(leafLogs.lines("level=WARN", "leafnode link down", attr("remote", "hub"))) != 1 {
				t.Errorf("the link going down is not logged once\n%s", leafLogs)
			}
		})
	}
}

// TestLeafnodeConfigErrors: a broker.conf with leafnode mistakes does not
// start, and each error names the setting by file:line.
func TestLeafnodeConfigErrors(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	conf := fmt.Sprintf(`identity = broker.example.net
plugin.choria.broker_network = true
plugin.security.provider = file
plugin.security.file.certificate = %s
plugin.security.file.key = %s
plugin.security.file.ca = %s
plugin.choria.network.leafnode_remotes = hub, dc2
plugin.choria.network.leafnode_remote.hub.url = hub.example.net:74222
plugin.choria.network.leafnode_remote.dc2.url = dc2.example.net
plugin.choria.network.leafnode_remote.dc2.credentials = %s
`, p.path("broker.pem"), p.path("broker.key"), p.path("ca.pem"), p.path("dc2.creds"))
	p.write(t, "broker.conf", []byte(conf))
	cfg, err := config.Load(p.path("broker.conf"))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckConfig(cfg)
	if want := p.path("broker.conf") + `:8: plugin.choria.network.leafnode_remote.hub.url = "hub.example.net:74222": not host:port`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v\nwant %s…", err, want)
	}
	delete(cfg.Raw, config.LeafRemotePrefix+"hub.url")
	cfg.Raw[config.LeafRemotePrefix+"hub.url"] = "hub.example.net:7422"
	_, err = New(cfg, slog.New(slog.DiscardHandler))
	if want := p.path("broker.conf") + ":10: plugin.choria.network.leafnode_remote.dc2.credentials = \"" + p.path("dc2.creds") + "\": no such file"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v\nwant %s…", err, want)
	}

	// A cluster that dials a hub needs a name of its own.
	cfg, err = config.Parse("broker.conf", []byte("identity = leaf1.example.net\nplugin.choria.network.peers = a.example.net, b.example.net\nplugin.choria.network.leafnode_remotes = hub\nplugin.choria.network.leafnode_remote.hub.url = hub.example.net\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckConfig(cfg); err == nil || !strings.HasPrefix(err.Error(), "broker.conf:3: plugin.choria.network.gateway_name: this broker is clustered and dials leafnode remotes") {
		t.Fatalf("got %v", err)
	}
	cfg.Network.ClusterName = "BRANCH1"
	if err := CheckConfig(cfg); err != nil {
		t.Fatalf("with a cluster name of its own: %v", err)
	}
}

// TestLeafnodeStreams: a KV bucket on the hub is read and written by a
// client on a leaf without Streams of its own, as go-choria's programs do
// (no JetStream domain), also when the hub's Streams have a domain the
// leaf names; and with Streams on both, the leaf's client uses its own
// plainly and the hub's by the hub's domain.
func TestLeafnodeStreams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		both       bool   // the leaf has Streams too
		hubDomain  string // the hub's stream.domain
		leafDomain string // the leaf's
	}{
		{"leaf without Streams", false, "", ""},
		{"leaf without Streams, hub with a domain", false, "hub", "hub"},
		{"Streams on both", true, "hub", ""},
	} {
		both := tc.both
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPKI(t)
			hubCfg := streamsConfig(p, t.TempDir())
			hubCfg.Network.LeafnodePort, hubCfg.Network.LeafnodeBrokers = testutil.FreePort(t), []string{leafPattern}
			hubCfg.Network.Stream.Domain = tc.hubDomain
			hub, hubLogs := startBroker(t, hubCfg)
			_, adminJS := streamsJS(t, hub.ClientURL(), p.adminTLS(t))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hubKV, err := adminJS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "SITE"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := hubKV.Put(ctx, "from_hub", []byte("1")); err != nil {
				t.Fatal(err)
			}

			leafCfg := p.named(t, "leaf1.example.net")
			dialHub(leafCfg, "hub", leafURL(hubCfg))
			leafCfg.Network.Stream.Domain = tc.leafDomain
			if both {
				leafCfg.Network.Stream.Store = t.TempDir()
			}
			leaf, leafLogs := startBroker(t, leafCfg)
			waitLinks(t, leaf, 1, hubLogs, leafLogs)

			// A client, as go-choria's programs connect under mTLS.
			client := p.issue(t, pki.IssueOptions{Name: "rip.mcollective"})
			nc := mustConnectOpts(t, leaf.ClientURL(), clientTLS(p.ca.Cert, client), nats.CustomInboxPrefix("mcollective.reply"))
			js, _ := jetstream.New(nc)
			if both {
				js, _ = jetstream.NewWithDomain(nc, "hub")
			}
			var kv jetstream.KeyValue
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				try, cancel := context.WithTimeout(ctx, 2*time.Second)
				kv, err = js.KeyValue(try, "SITE")
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the hub's bucket from the leaf: %v\n%s", err, leafLogs)
				}
			}
			if e, err := kv.Get(ctx, "from_hub"); err != nil || string(e.Value()) != "1" {
				t.Fatalf("read on the leaf: %v", err)
			}
			if _, err := kv.Put(ctx, "from_leaf", []byte("2")); err != nil {
				t.Fatalf("write on the leaf: %v\n%s", err, leafLogs)
			}
			if e, err := hubKV.Get(ctx, "from_leaf"); err != nil || string(e.Value()) != "2" {
				t.Fatalf("the leaf's write on the hub: %v", err)
			}
			if both {
				// Plain requests stay on the leaf, which has its own Streams.
				plain, _ := jetstream.New(nc)
				if _, err := plain.KeyValue(ctx, "SITE"); err == nil {
					t.Fatal("a plain request found the hub's bucket")
				}
				ai, err := plain.AccountInfo(ctx)
				if err != nil || ai.Domain != "" {
					t.Fatalf("the leaf's own Streams: %+v %v", ai, err)
				}
			}
		})
	}
}

func mustConnectOpts(t testing.TB, url string, tc *tls.Config, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := connect(url, tc, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestLeafnodeStockLeaf: a stock nats-server (the engine's version) joins
// our hub as a leafnode with TLS and a certificate of our CA matching
// leafnode_brokers; messages cross both ways, and with default_js_domain
// its clients use our hub's Streams.
func TestLeafnodeStockLeaf(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	hubCfg := streamsConfig(p, t.TempDir())
	hubCfg.Network.LeafnodePort, hubCfg.Network.LeafnodeBrokers = testutil.FreePort(t), []string{leafPattern}
	hub, hubLogs := startBroker(t, hubCfg)
	cert, key := p.stockCert(t, "leaf7.example.net")
	client := testutil.FreePort(t)
	log := stockServer(t, p, "stock-leaf", fmt.Sprintf(`server_name: leaf7.example.net
listen: 127.0.0.1:%d
default_js_domain: { "$G": "" }
leafnodes {
  remotes [ { url: "tls://127.0.0.1:%d", tls { cert_file: %q, key_file: %q, ca_file: %q } } ]
}
`, client, hubCfg.Network.LeafnodePort, cert, key, p.path("ca.pem")))
	if l := waitLinks(t, hub, 1, fileLog(log), hubLogs).Links[0]; l.Name != "leaf7.example.net" || l.Outbound {
		t.Errorf("link %+v", l)
	}
	onStock := connectStock(t, client)
	onHub := mustConnect(t, hub.ClientURL(), p.adminTLS(t))
	crossRoutes(t, onHub, onStock, "mcollective.broadcast.agent.rpcutil")
	crossRoutes(t, onStock, onHub, "mcollective.reply.x.1")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hubJS, _ := jetstream.New(onHub)
	bucket, err := hubJS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "STOCK"})
	if err != nil {
		t.Fatal(err)
	}
	stockJS, _ := jetstream.New(onStock)
	kv, err := stockJS.KeyValue(ctx, "STOCK")
	if err != nil {
		t.Fatalf("our hub's bucket from the stock leaf: %v", err)
	}
	if _, err := kv.Put(ctx, "k", []byte("from stock")); err != nil {
		t.Fatal(err)
	}
	if e, err := bucket.Get(ctx, "k"); err != nil || string(e.Value()) != "from stock" {
		t.Fatalf("on the hub: %v", err)
	}
}

// TestLeafnodeStockHub: our broker dials a stock nats-server hub that
// requires mutual TLS; it presents its own certificate, checks the hub's,
// and messages cross both ways. A stock hub whose cluster has the leaf's
// name is refused, and the leaf's log says which setting to change.
func TestLeafnodeStockHub(t *testing.T) {
	t.Parallel()
	for _, clash := range []bool{false, true} {
		t.Run(fmt.Sprintf("clash=%v", clash), func(t *testing.T) {
			t.Parallel()
			p := newTestPKI(t)
			cert, key := p.stockCert(t, "hub.example.net")
			client, leafPort, clusterPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
			cluster := ""
			if clash {
				// A one-member cluster named as our unclustered leaf is.
				cluster = fmt.Sprintf("cluster { name: leaf1.example.net, listen: 127.0.0.1:%d }", clusterPort)
			}
			log := stockServer(t, p, "stock-hub", fmt.Sprintf(`server_name: hub.example.net
listen: 127.0.0.1:%d
%s
leafnodes {
  listen: 127.0.0.1:%d
  tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 2 }
}
`, client, cluster, leafPort, cert, key, p.path("ca.pem")))
			waitPort(t, leafPort)
			leafCfg := p.named(t, "leaf1.example.net")
			dialHub(leafCfg, "hub", fmt.Sprintf("localhost:%d", leafPort))
			leaf, leafLogs := startBroker(t, leafCfg)
			if clash {
				deadline := time.Now().Add(20 * time.Second)
				for len(leafLogs.lines("level=ERROR", "same name", attr("setting", "plugin.choria.network.gateway_name"), attr("cluster", "leaf1.example.net"))) == 0 {
					if time.Now().After(deadline) {
						t.Fatalf("the clash is not explained\n%s", leafLogs)
					}
					time.Sleep(50 * time.Millisecond)
				}
				return
			}
			st := waitLinks(t, leaf, 1, fileLog(log), leafLogs)
			if l := st.Links[0]; l.Name != "hub.example.net" || !l.Outbound || l.Remote != "hub" || !st.Remotes[0].Up {
				t.Errorf("status %+v", st)
			}
			onStock := connectStock(t, client)
			onLeaf := mustConnect(t, leaf.ClientURL(), p.adminTLS(t))
			crossRoutes(t, onLeaf, onStock, "mcollective.broadcast.agent.rpcutil")
			crossRoutes(t, onStock, onLeaf, "mcollective.reply.x.1")
		})
	}
}

// waitPort waits until something listens on a loopback port.
func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLeafnodeRemoteTLSKeys: a remote's tls keys at work against stock
// nats-server hubs: another PKI's certificate and CA (tls.cert, tls.key,
// tls.ca), also over a wss:// url, a hub whose certificate is not checked
// (tls.verify = false) and a plaintext hub (tls.disable = true), each of
// the last two warned about.
func TestLeafnodeRemoteTLSKeys(t *testing.T) {
	t.Parallel()
	now := time.Now()
	foreign, err := pki.NewCA("Other CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		hub   string // the stock hub's leafnodes block: %[1]q to %[3]q its certificate, key and CA, %[4]d a websocket port
		props func(p *testPKI) []string
		warn  string
	}{
		{"another PKI", `tls { cert_file: %[1]q, key_file: %[2]q, ca_file: %[3]q, verify: true }`, func(p *testPKI) []string {
			return []string{"tls.cert", p.path("other.pem"), "tls.key", p.path("other.key"), "tls.ca", p.path("other-ca.pem")}
		}, ""},
		{"hub not verified", `tls { cert_file: %[1]q, key_file: %[2]q, ca_file: %[3]q }`, func(*testPKI) []string {
			return []string{"tls.verify", "false"}
		}, "LEAFNODE HUB NOT VERIFIED"},
		{"plaintext", ``, func(*testPKI) []string {
			return []string{"tls.disable", "yes"}
		}, "LEAFNODE TLS IS OFF"},
		{"websocket", `}
websocket {
  listen: 127.0.0.1:%[4]d
  tls { cert_file: %[1]q, key_file: %[2]q, ca_file: %[3]q, verify: true }`, func(p *testPKI) []string {
			return []string{"tls.cert", p.path("other.pem"), "tls.key", p.path("other.key"), "tls.ca", p.path("other-ca.pem")}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPKI(t)
			kp, err := foreign.Issue(pki.IssueOptions{Name: "other.example.net", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, KeyType: "ec"})
			if err != nil {
				t.Fatal(err)
			}
			p.write(t, "other.pem", pki.CertsPEM(kp.Chain...))
			p.writeKey(t, "other.key", kp)
			p.write(t, "other-ca.pem", pki.CertsPEM(foreign.Cert))
			client, leafPort, wsPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
			block := tc.hub
			if block != "" {
				block = fmt.Sprintf(block, p.path("other.pem"), p.path("other.key"), p.path("other-ca.pem"), wsPort)
			}
			log := stockServer(t, p, "stock-hub", fmt.Sprintf("server_name: other.example.net\nlisten: 127.0.0.1:%d\nleafnodes {\n  listen: 127.0.0.1:%d\n  %s\n}\n", client, leafPort, block))
			url := fmt.Sprintf("127.0.0.1:%d", leafPort)
			if tc.name == "websocket" {
				url = fmt.Sprintf("wss://localhost:%d", wsPort)
			}
			waitPort(t, leafPort)
			leafCfg := p.named(t, "leaf1.example.net")
			dialHub(leafCfg, "hub", url, tc.props(p)...)
			leaf, leafLogs := startBroker(t, leafCfg)
			if tc.warn != "" && len(leafLogs.lines("level=WARN", tc.warn, "setting=plugin.choria.network.leafnode_remote.hub.tls.")) != 1 {
				t.Errorf("no warning %q\n%s", tc.warn, leafLogs)
			}
			waitLinks(t, leaf, 1, fileLog(log), leafLogs)
			onStock := connectStock(t, client)
			crossRoutes(t, mustConnect(t, leaf.ClientURL(), p.adminTLS(t)), onStock, "mcollective.broadcast.agent.rpcutil")
		})
	}

	// Our CA, but a hub certificate that does not name the host dialled.
	t.Run("wrong name", func(t *testing.T) {
		t.Parallel()
		p := newTestPKI(t)
		kp := p.issue(t, pki.IssueOptions{Name: "elsewhere.example.net"})
		p.write(t, "elsewhere.pem", pki.CertsPEM(kp.Chain...))
		p.writeKey(t, "elsewhere.key", kp)
		leafPort := testutil.FreePort(t)
		stockServer(t, p, "stock-hub", fmt.Sprintf("listen: 127.0.0.1:%d\nleafnodes {\n  listen: 127.0.0.1:%d\n  tls { cert_file: %q, key_file: %q, ca_file: %q }\n}\n",
			testutil.FreePort(t), leafPort, p.path("elsewhere.pem"), p.path("elsewhere.key"), p.path("ca.pem")))
		waitPort(t, leafPort)
		leafCfg := p.named(t, "leaf1.example.net")
		dialHub(leafCfg, "hub", fmt.Sprintf("127.0.0.1:%d", leafPort))
		leaf, leafLogs := startBroker(t, leafCfg)
		deadline := time.Now().Add(15 * time.Second)
		for len(leafLogs.lines("leafnode refused", attr("hub", "hub"), "do not include 127.0.0.1, the host dialled")) == 0 || leaf.LeafsRefused(string(pki.Invalid)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the hub's certificate was not refused\n%s", leafLogs)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(leaf.Leafnodes().Links) != 0 {
			t.Fatal("linked to a hub whose certificate names another host")
		}
	})
}

// TestLeafnodeOverWebsocket: with websocket_port beside leafnode_port, a
// leaf may dial the websocket port (wss://, path /leafnode) and is held to
// the same rule: leaf1's certificate links, a node's is refused.
func TestLeafnodeOverWebsocket(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	hubCfg := p.leafHub(t)
	hubCfg.Network.WebsocketPort = testutil.FreePort(t)
	hub, hubLogs := startBroker(t, hubCfg)
	url := fmt.Sprintf("wss://localhost:%d", hubCfg.Network.WebsocketPort)

	nodeCfg := p.named(t, "node1.example.net")
	dialHub(nodeCfg, "hub", url)
	node, _ := startBroker(t, nodeCfg)
	deadline := time.Now().Add(15 * time.Second)
	for len(hubLogs.lines("leafnode refused", attr("reason", string(pki.NotLeaf)), "node1.example.net")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a node's certificate over websocket was not refused as a leafnode\n%s", hubLogs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	leafCfg := p.named(t, "leaf1.example.net")
	dialHub(leafCfg, "hub", url)
	leaf, leafLogs := startBroker(t, leafCfg)
	waitLinks(t, leaf, 1, hubLogs, leafLogs)
	if st := hub.Leafnodes(); len(st.Links) != 1 || st.Links[0].Name != "leaf1.example.net" || len(node.Leafnodes().Links) != 0 {
		t.Fatalf("hub links %+v", st.Links)
	}
	crossRoutes(t, mustConnect(t, hub.ClientURL(), p.adminTLS(t)), mustConnect(t, leaf.ClientURL(), p.adminTLS(t)), "mcollective.broadcast.agent.rpcutil")
}

// TestLeafnodeBesideGateway: a hub that is also a gateway of a
// super-cluster takes leafnodes (the engine then wants the system account
// declared, which the broker does).
func TestLeafnodeBesideGateway(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	hubCfg := p.leafHub(t)
	hubCfg.Network.ClusterName = "EAST"
	hubCfg.Network.GatewayPort = testutil.FreePort(t)
	hubCfg.Network.GatewayBrokers = []string{`^gw\d+\.example\.net$`}
	hub, hubLogs := startBroker(t, hubCfg)
	leafCfg := p.named(t, "leaf1.example.net")
	dialHub(leafCfg, "hub", leafURL(hubCfg))
	leaf, leafLogs := startBroker(t, leafCfg)
	waitLinks(t, hub, 1, hubLogs, leafLogs)
	if hub.srv.SystemAccount() == nil {
		t.Fatal("no system account")
	}
	crossRoutes(t, mustConnect(t, hub.ClientURL(), p.adminTLS(t)), mustConnect(t, leaf.ClientURL(), p.adminTLS(t)), "mcollective.broadcast.agent.rpcutil")
}
