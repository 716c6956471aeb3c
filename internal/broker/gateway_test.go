package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// gwCluster is one cluster of a loopback super-cluster: its members'
// configurations, each with its own certificate (naming 127.0.0.1, as the
// remotes' urls do), cluster and gateway ports.
type gwCluster struct {
	name    string
	cfgs    []*config.Config
	gwPorts []int
}

// gatewayCluster is a cluster of n members named NAME<i>.example.net.
func (p *testPKI) gatewayCluster(t testing.TB, name string, n int) *gwCluster {
	t.Helper()
	c := &gwCluster{name: name}
	var peers []string
	peerPorts := make([]int, n)
	for i := range n {
		peerPorts[i] = testutil.FreePort(t)
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", peerPorts[i]))
		c.gwPorts = append(c.gwPorts, testutil.FreePort(t))
	}
	for i := range n {
		id := fmt.Sprintf("%s%d.example.net", strings.ToLower(name), i+1)
		cfg := p.gatewayMember(t, id, c.gwPorts[i])
		cfg.Network.ClusterName = name
		if n > 1 {
			cfg.Network.Peers, cfg.Network.PeerPort = peers, peerPorts[i]
			cfg.Network.PeerUser, cfg.Network.PeerPassword = "routes", "Vrph54FBcIvdM"
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	return c
}

// gatewayMember is a broker with its own certificate for id and a gateway port.
func (p *testPKI) gatewayMember(t testing.TB, id string, gwPort int) *config.Config {
	t.Helper()
	kp := p.issue(t, pki.IssueOptions{Name: id, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	p.write(t, id+".pem", pki.CertsPEM(kp.Chain...))
	p.writeKey(t, id+".key", kp)
	cfg := p.config()
	cfg.Identity = id
	cfg.Security.FileCertificate, cfg.Security.FileKey = p.path(id+".pem"), p.path(id+".key")
	cfg.Network.GatewayPort = gwPort
	cfg.Network.ClusterName = "CHORIA"
	// Clients learn the members' addresses from this; identities do not resolve.
	cfg.Network.ClientPort = testutil.FreePort(t)
	cfg.Network.PublicURL = fmt.Sprintf("127.0.0.1:%d", cfg.Network.ClientPort)
	return cfg
}

// urls are the cluster's gateway URLs, as a remote lists them.
func (c *gwCluster) urls() []string {
	var out []string
	for _, port := range c.gwPorts {
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", port))
	}
	return out
}

// remote adds other to every member's gateway remotes.
func (c *gwCluster) remote(other *gwCluster) {
	for _, cfg := range c.cfgs {
		addRemote(cfg, config.GatewayRemote{Name: other.name, URLs: other.urls()})
	}
}

func addRemote(cfg *config.Config, r config.GatewayRemote) {
	cfg.Network.GatewayRemotes = append(cfg.Network.GatewayRemotes, r.Name)
	cfg.Network.Gateways = append(cfg.Network.Gateways, r)
}

// waitGatewayLinks waits until each broker sends through an outbound link
// to every one of clusters.
func waitGatewayLinks(t *testing.T, bs []*Broker, logs []*syncBuffer, limit time.Duration, clusters ...string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for i, b := range bs {
		for {
			missing := missingOutbound(b, clusters)
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has no gateway link to %v after %s\n%s", b.cfg.Identity, missing, limit, logs[i])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func missingOutbound(b *Broker, clusters []string) []string {
	up := map[string]bool{}
	for _, l := range b.GatewayStatus().Links {
		up[l.Cluster] = l.Outbound != nil
	}
	var missing []string
	for _, c := range clusters {
		if !up[c] {
			missing = append(missing, c)
		}
	}
	return missing
}

// outboundPort is the gateway port b's link to cluster goes to, 0 when none.
func outboundPort(b *Broker, cluster string) int {
	for _, l := range b.GatewayStatus().Links {
		if l.Cluster == cluster && l.Outbound != nil {
			_, port, _ := net.SplitHostPort(l.Outbound.Addr)
			var n int
			fmt.Sscan(port, &n)
			return n
		}
	}
	return 0
}

// gatewayFleet is an emulated fleet on servers, each node with a
// certificate of its own name, until the test ends.
func gatewayFleet(t *testing.T, p *testPKI, servers []string, nodes int) *fleet.Emulator {
	t.Helper()
	base := p.issue(t, pki.IssueOptions{Name: "emulated-0.example.net"})
	cas := []*x509.Certificate{p.ca.Cert}
	e, err := fleet.NewEmulator(fleet.EmulatorOptions{
		Servers: servers, Nodes: nodes, Certs: []*pki.KeyPair{base}, IssueCA: p.ca, CA: cas,
		Trust: pki.NewTrust(cas, nil), Allowed: []string{`\.mcollective$`}, Privileged: []string{`\.privileged\.mcollective$`},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("emulator did not stop within 30s")
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for e.Stats().Connected != nodes {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d nodes connected after 90s", e.Stats().Connected, nodes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e
}

// gatewayPing pings the fleet from a client on server until every node has
// answered or limit passes; it returns the nodes still missing.
func gatewayPing(t *testing.T, client *pki.KeyPair, ca *x509.Certificate, server string, e *fleet.Emulator, limit time.Duration) []string {
	t.Helper()
	ids := e.Identities()
	deadline := time.Now().Add(limit)
	for {
		res, err := fleet.Ping(context.Background(), fleet.PingOptions{Servers: []string{server}, Cert: client,
			CA: []*x509.Certificate{ca}, Expect: len(ids), Timeout: 10 * time.Second})
		var missing []string
		if err == nil {
			missing = res.Missing(ids)
			if len(missing) == 0 {
				s := res.Summarise()
				t.Logf("ping via %s: %d replies, p50 %s p99 %s", server, s.Count, s.P50, s.P99)
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Logf("last ping: %v", err)
			}
			return missing
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestGatewaySuperCluster joins two 3-member clusters by mutual TLS
// gateways: 1 000 emulated nodes on WEST answer a ping from a client on
// EAST. Then the WEST member EAST's gateway link uses is killed: the link
// moves to another member and every node answers again; then the EAST
// member a WEST link goes to is killed, with the same result.
func TestGatewaySuperCluster(t *testing.T) {
	t.Parallel()
	nodes := 1000
	if testing.Short() {
		nodes = 200 // -race makes each TLS connection ten times dearer
	}
	p := newTestPKI(t)
	east, west := p.gatewayCluster(t, "EAST", 3), p.gatewayCluster(t, "WEST", 3)
	east.remote(west)
	west.remote(east)
	type member struct {
		b    *Broker
		logs *syncBuffer
		stop func()
	}
	start := func(c *gwCluster) []member {
		var ms []member
		for _, cfg := range c.cfgs {
			b, logs, stop := runBroker(t, cfg)
			ms = append(ms, member{b, logs, stop})
		}
		return ms
	}
	es, ws := start(east), start(west)
	all := append(append([]member{}, es...), ws...)
	brokers := func(ms []member) ([]*Broker, []*syncBuffer) {
		var bs []*Broker
		var ls []*syncBuffer
		for _, m := range ms {
			bs, ls = append(bs, m.b), append(ls, m.logs)
		}
		return bs, ls
	}
	ebs, els := brokers(es)
	wbs, wls := brokers(ws)
	waitRoutes(t, ebs, 2, els)
	waitRoutes(t, wbs, 2, wls)
	waitGatewayLinks(t, ebs, els, 30*time.Second, "WEST")
	waitGatewayLinks(t, wbs, wls, 30*time.Second, "EAST")
	for _, m := range all {
		if st := m.b.GatewayStatus(); st.Plain || m.b.GatewaysRefused(string(pki.NotGateway)) != 0 {
			t.Fatalf("%s: plain %v, refused %d\n%s", m.b.cfg.Identity, st.Plain, m.b.GatewaysRefused(string(pki.NotGateway)), m.logs)
		}
	}

	var westURLs []string
	for _, b := range wbs {
		westURLs = append(westURLs, b.ClientURL())
	}
	e := gatewayFleet(t, p, westURLs, nodes)
	client := p.issue(t, pki.IssueOptions{Name: "admin.mcollective", KeyType: "rsa"})
	if missing := gatewayPing(t, client, p.ca.Cert, ebs[0].ClientURL(), e, 30*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d nodes on WEST did not answer a ping from EAST, such as %v", len(missing), nodes, missing[:min(5, len(missing))])
	}

	// The WEST member EAST's first member sends through.
	port := outboundPort(ebs[0], "WEST")
	victim := -1
	for i, gp := range west.gwPorts {
		if gp == port {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("east1's link to WEST goes to port %d, no WEST member's", port)
	}
	t.Logf("killing %s, which east1's gateway link uses (%d nodes on it)", wbs[victim].cfg.Identity, wbs[victim].NumClients())
	killed := time.Now()
	ws[victim].stop()
	var survivors []*Broker
	var survivorLogs []*syncBuffer
	for i := range ws {
		if i != victim {
			survivors, survivorLogs = append(survivors, wbs[i]), append(survivorLogs, wls[i])
		}
	}
	waitGatewayLinks(t, ebs[:1], els[:1], 30*time.Second, "WEST")
	if missing := gatewayPing(t, client, p.ca.Cert, ebs[0].ClientURL(), e, 120*time.Second); len(missing) > 0 {
		t.Fatalf("after killing %s: %d of %d nodes missing (%d connected)", wbs[victim].cfg.Identity, len(missing), nodes, e.Stats().Connected)
	}
	if outboundPort(ebs[0], "WEST") == west.gwPorts[victim] {
		t.Fatal("east1 still links to the killed member")
	}
	t.Logf("every node answered again %s after the kill", time.Since(killed).Round(time.Millisecond))

	// An EAST member a surviving WEST member sends replies through.
	port = outboundPort(survivors[0], "EAST")
	victim = -1
	for i, gp := range east.gwPorts {
		if gp == port {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("%s's link to EAST goes to port %d, no EAST member's", survivors[0].cfg.Identity, port)
	}
	via := (victim + 1) % len(es)
	t.Logf("killing %s, which %s's gateway link uses; pinging via %s", ebs[victim].cfg.Identity, survivors[0].cfg.Identity, ebs[via].cfg.Identity)
	es[victim].stop()
	waitGatewayLinks(t, survivors, survivorLogs, 30*time.Second, "EAST")
	if missing := gatewayPing(t, client, p.ca.Cert, ebs[via].ClientURL(), e, 60*time.Second); len(missing) > 0 {
		t.Fatalf("after killing %s: %d of %d nodes missing", ebs[victim].cfg.Identity, len(missing), nodes)
	}
}

// stockNATS runs a stock nats-server with conf until the test ends; its log
// is returned by the function.
func stockNATS(t *testing.T, p *testPKI, name, conf string) func() string {
	t.Helper()
	logPath := stockServer(t, p, name, conf)
	return func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
}

// TestGatewayPlaintext: an old gateway without TLS (stock nats-server, as
// go-choria's gateways are) is refused by our mutual TLS gateway, both
// ways; with tls.disable for it the link forms, loudly warned, and
// messages cross it.
func TestGatewayPlaintext(t *testing.T) {
	t.Parallel()
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls.disable=%v", plain), func(t *testing.T) {
			t.Parallel()
			p := newTestPKI(t)
			oldClient, oldGW := testutil.FreePort(t), testutil.FreePort(t)
			cfg := p.gatewayMember(t, "east1.example.net", testutil.FreePort(t))
			cfg.Network.ClusterName = "EAST"
			addRemote(cfg, config.GatewayRemote{Name: "OLD", URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", oldGW)}, TLS: config.RemoteTLS{Disable: plain}})
			b, logs := startBroker(t, cfg)
			stockLog := stockNATS(t, p, "old", fmt.Sprintf(`server_name: old.example.net
listen: 127.0.0.1:%d
gateway {
  name: OLD
  listen: 127.0.0.1:%d
  gateways: [ { name: EAST, urls: [ "nats://127.0.0.1:%d" ] } ]
}
`, oldClient, oldGW, cfg.Network.GatewayPort))

			if !plain {
				// Our dial to it fails at TLS; its dial to us waits in silence
				// for an INFO that only comes after TLS, and times out.
				waitFor(t, 20*time.Second, "both refusals", func() bool {
					return b.GatewaysRefused(gatewayPlain) > 0 && b.GatewaysRefused(gatewayNoTLS) > 0
				})
				waitLog(t, logs, stockLog, "gateway refused", "reason=plaintext", "remote=127.0.0.1:"+fmt.Sprint(oldGW))
				waitLog(t, logs, stockLog, "gateway refused", `reason="no TLS handshake"`)
				for _, l := range b.GatewayStatus().Links {
					if l.Outbound != nil || len(l.Inbound) > 0 {
						t.Fatalf("a link with the plaintext gateway formed: %+v\n%s", l, logs)
					}
				}
				if !strings.Contains(stockLog(), "[ERR]") {
					t.Errorf("the plaintext gateway logged no error:\n%s", stockLog())
				}
				return
			}
			waitLog(t, logs, stockLog, "GATEWAY TLS IS OFF", "gateway_remote.OLD.tls.disable")
			waitGatewayLinks(t, []*Broker{b}, []*syncBuffer{logs}, 20*time.Second, "OLD")
			waitFor(t, 20*time.Second, "the old gateway's link in", func() bool {
				st := b.GatewayStatus()
				return st.Plain && len(st.Links) == 1 && len(st.Links[0].Inbound) == 1
			})
			ours := mustConnect(t, b.ClientURL(), clientTLS(p.ca.Cert, p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"})))
			old, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", oldClient), nats.Timeout(3*time.Second), nats.NoReconnect())
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			crossRoutes(t, ours, old, "east.to.old")
			crossRoutes(t, old, ours, "old.to.east")
		})
	}
}

// gatewayHandshake dials a gateway port with kp as a gateway would and
// returns the first line after TLS, or the error.
func gatewayHandshake(addr string, ca *x509.Certificate, kp *pki.KeyPair) (string, error) {
	raw, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	tc := clientTLS(ca, kp)
	tc.ServerName = "127.0.0.1"
	conn := tls.Client(raw, tc)
	if err := conn.Handshake(); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n') // TLS 1.3: a refusal arrives here
	return line, err
}

// TestGatewayAdmission: a node certificate, which every node has, dialling
// the gateway port is refused, counted and logged; a certificate naming a
// remote's host, or matching gateway_brokers, is a gateway.
func TestGatewayAdmission(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.gatewayMember(t, "east1.example.net", testutil.FreePort(t))
	cfg.Network.ClusterName = "EAST"
	cfg.Network.GatewayBrokers = []string{`^gw\d+\.west\.example\.net$`}
	addRemote(cfg, config.GatewayRemote{Name: "WEST", URLs: []string{"nats://west1.example.net:7222"}})
	b, logs := startBroker(t, cfg)
	addr := b.GatewayAddr().String()

	node := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})
	if line, err := gatewayHandshake(addr, p.ca.Cert, node); err == nil {
		t.Fatalf("a node certificate was taken as a gateway: %q", line)
	}
	waitLog(t, logs, func() string { return "" }, "gateway refused", `reason="not a gateway"`, "node1.example.net")
	if n := b.GatewaysRefused(string(pki.NotGateway)); n != 1 {
		t.Errorf("refused %d, want 1", n)
	}
	// Logged once a minute per certificate, counted every time.
	gatewayHandshake(addr, p.ca.Cert, node)
	waitFor(t, 5*time.Second, "the second refusal counted", func() bool { return b.GatewaysRefused(string(pki.NotGateway)) == 2 })
	if n := len(logs.lines("gateway refused", "node1.example.net")); n != 1 {
		t.Errorf("%d log lines for two refusals, want 1", n)
	}

	for _, kp := range []*pki.KeyPair{
		p.issue(t, pki.IssueOptions{Name: "west1.example.net"}),    // a host of WEST's urls
		p.issue(t, pki.IssueOptions{Name: "gw7.west.example.net"}), // gateway_brokers
	} {
		line, err := gatewayHandshake(addr, p.ca.Cert, kp)
		if err != nil || !strings.Contains(line, `"gateway":"EAST"`) {
			t.Errorf("%s: %q %v", kp.Leaf().Subject.CommonName, line, err)
		}
	}
}

// TestGatewayDuplicateName: brokers of two clusters with the same
// identity cannot link; the error says to change identity.
func TestGatewayDuplicateName(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	east := p.gatewayCluster(t, "EAST", 1)
	west := &gwCluster{name: "WEST", gwPorts: []int{testutil.FreePort(t)}}
	west.cfgs = []*config.Config{p.gatewayMember(t, "east1.example.net", west.gwPorts[0])}
	west.cfgs[0].Network.ClusterName = "WEST"
	east.remote(west)
	west.remote(east)
	b, logs := startBroker(t, east.cfgs[0])
	startBroker(t, west.cfgs[0])
	waitLog(t, logs, func() string { return "" }, "gateway refused", `server name \"east1.example.net\" is used in this cluster and again`, "change identity", "setting=identity")
	if b.GatewaysRefused(gatewayDuplicate) == 0 {
		t.Error("not counted")
	}
}

// TestGatewayConfigErrors: settings the broker cannot use are named with
// their file:line.
func TestGatewayConfigErrors(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	conf := fmt.Sprintf(`plugin.choria.broker_network = true
identity = broker.example.net
plugin.security.provider = file
plugin.security.file.certificate = %s
plugin.security.file.key = %s
plugin.security.file.ca = %s
plugin.choria.network.gateway_port = 7222
plugin.choria.network.gateway_remotes = WEST
plugin.choria.network.gateway_remote.WEST.urls = west1.example.net:7222
plugin.choria.network.gateway_remote.WEST.tls.cert = %s
plugin.choria.network.gateway_remote.WEST.tls.key = %s
`, p.path("broker.pem"), p.path("broker.key"), p.path("ca.pem"), p.path("missing.pem"), p.path("broker.key"))
	p.write(t, "b.conf", []byte(conf))
	cfg, err := config.Load(p.path("b.conf"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, slog.New(slog.DiscardHandler))
	want := "plugin.choria.network.gateway_remote.WEST.tls.cert (" + p.path("b.conf") + ":10): "
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want …%s…", err, want)
	}

	// Streams on a lone broker with a gateway: the engine would refuse it.
	p.write(t, "b.conf", []byte(conf+"plugin.choria.use_srv = false\nplugin.choria.network.stream.store = "+t.TempDir()+"\n"))
	if cfg, err = config.Load(p.path("b.conf")); err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, slog.New(slog.DiscardHandler))
	want = "plugin.choria.network.stream.store (" + p.path("b.conf") + ":13) with plugin.choria.network.gateway_port (" + p.path("b.conf") + ":7) needs cluster peers"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want …%s…", err, want)
	}
}

// TestGatewayAcceptOnly: a gateway port without remotes (go-choria cannot
// have one) takes a remote cluster whose certificate matches
// gateway_brokers, here a stock nats-server with mutual TLS; the link
// forms both ways and messages cross it.
func TestGatewayAcceptOnly(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.gatewayMember(t, "hub1.example.net", testutil.FreePort(t))
	cfg.Network.ClusterName = "HUB"
	cfg.Network.GatewayBrokers = []string{`^spoke\d+\.example\.net$`}
	b, logs := startBroker(t, cfg)
	waitLog(t, logs, func() string { return "" }, "gateway port without remotes")

	spoke := p.issue(t, pki.IssueOptions{Name: "spoke1.example.net", IPs: []net.IP{net.ParseIP("127.0.0.1")}, KeyType: "rsa"})
	p.write(t, "spoke.pem", pki.CertsPEM(spoke.Chain...))
	p.writeKey(t, "spoke.key", spoke)
	spokeClient, spokeGW := testutil.FreePort(t), testutil.FreePort(t)
	stockLog := stockNATS(t, p, "spoke", fmt.Sprintf(`server_name: spoke1.example.net
listen: 127.0.0.1:%d
gateway {
  name: SPOKE
  listen: 127.0.0.1:%d
  tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 2 }
  gateways: [ { name: HUB, urls: [ "nats://127.0.0.1:%d" ] } ]
}
`, spokeClient, spokeGW, p.path("spoke.pem"), p.path("spoke.key"), p.path("ca.pem"), cfg.Network.GatewayPort))
	waitFor(t, 20*time.Second, "links both ways with SPOKE", func() bool {
		st := b.GatewayStatus()
		return len(st.Links) == 1 && st.Links[0].Cluster == "SPOKE" && !st.Links[0].Configured && st.Links[0].Outbound != nil && len(st.Links[0].Inbound) == 1
	})
	ours := mustConnect(t, b.ClientURL(), clientTLS(p.ca.Cert, p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"})))
	theirs, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", spokeClient), nats.Timeout(3*time.Second), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	crossRoutes(t, ours, theirs, "hub.to.spoke")
	crossRoutes(t, theirs, ours, "spoke.to.hub")
	if n := b.GatewaysRefused(string(pki.NotGateway)); n != 0 {
		t.Errorf("%d refused\n%s\n%s", n, logs, stockLog())
	}
}

// TestGatewayWrongCertificate: EAST's certificate names neither the
// address WEST dials nor a host of WEST's urls. WEST refuses it both ways,
// each refusal explained and counted; EAST's log says WEST refuses its
// certificate and what would make WEST take it.
func TestGatewayWrongCertificate(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	east := p.gatewayMember(t, "east1.example.net", testutil.FreePort(t))
	kp := p.issue(t, pki.IssueOptions{Name: "east1.example.net"}) // no 127.0.0.1
	p.write(t, "east-only.pem", pki.CertsPEM(kp.Chain...))
	p.writeKey(t, "east-only.key", kp)
	east.Security.FileCertificate, east.Security.FileKey = p.path("east-only.pem"), p.path("east-only.key")
	east.Network.ClusterName = "EAST"
	west := p.gatewayMember(t, "west1.example.net", testutil.FreePort(t))
	west.Network.ClusterName = "WEST"
	addRemote(east, config.GatewayRemote{Name: "WEST", URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", west.Network.GatewayPort)}})
	addRemote(west, config.GatewayRemote{Name: "EAST", URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", east.Network.GatewayPort)}})
	eb, el := startBroker(t, east)
	wb, wl := startBroker(t, west)
	none := func() string { return "" }
	waitLog(t, el, none, "will refuse this broker")
	waitLog(t, wl, none, "gateway refused", `reason="not a gateway"`, "CN=east1.example.net")
	waitLog(t, wl, none, "gateway refused: the remote gateway's certificate does not verify", "doesn't contain any IP SANs", `reason="invalid certificate"`)
	waitLog(t, el, none, "gateway link refused by the remote gateway", "tls: bad certificate")
	if wb.GatewaysRefused(string(pki.NotGateway)) == 0 || wb.GatewaysRefused(string(pki.Invalid)) == 0 {
		t.Errorf("WEST counted %d not a gateway, %d invalid", wb.GatewaysRefused(string(pki.NotGateway)), wb.GatewaysRefused(string(pki.Invalid)))
	}
	for _, b := range []*Broker{eb, wb} {
		for _, l := range b.GatewayStatus().Links {
			if l.Outbound != nil || len(l.Inbound) > 0 {
				t.Errorf("%s: a link formed: %+v", b.cfg.Identity, l)
			}
		}
	}
}
