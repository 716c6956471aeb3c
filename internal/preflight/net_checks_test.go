package preflight

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// loopback is a config listening on 127.0.0.1 with the given ports.
func loopback(t *testing.T, client, stats int) *config.Config {
	return parse(t, fmt.Sprintf("identity = broker.example.net\nplugin.choria.use_srv = false\nplugin.choria.network.listen_address = 127.0.0.1\nplugin.choria.network.client_port = %d\nplugin.choria.stats_port = %d\n", client, stats))
}

func realEnv(cfg *config.Config, dns Resolver) *Env {
	return &Env{Config: cfg, Nodes: 100, Sys: Host{Resolver: dns}, Now: time.Now(), Measure: 20 * time.Millisecond}
}

func TestPortsFree(t *testing.T) {
	t.Parallel()
	rs := run(t, ports{}, realEnv(loopback(t, testutil.FreePort(t), testutil.FreePort(t)), noDNS{}))
	if len(rs) != 2 {
		t.Fatalf("want client and monitoring: %+v", rs)
	}
	for _, r := range rs {
		expect(t, r, Pass, "is free")
	}
}

func TestPortsHeldByAnotherProgram(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	r := item(t, run(t, ports{}, realEnv(loopback(t, port, 0), noDNS{})), fmt.Sprintf("client %d", port))
	expect(t, r, Fail, fmt.Sprintf("127.0.0.1:%d held by", port))
	if !strings.Contains(r.Fix, "plugin.choria.network.client_port") {
		t.Errorf("fix %q", r.Fix)
	}
	// The same port seen through a /proc where a choria-broker holds it.
	env := realEnv(loopback(t, port, 0), noDNS{})
	env.Sys = Host{Root: fakeProc(t, port, 77, "choria-broker"), Resolver: noDNS{}}
	expect(t, item(t, run(t, ports{}, env), fmt.Sprintf("client %d", port)), Pass, "held by choria-broker (pid 77)")
}

// fakeProc is a /proc where process pid, named name, listens on port.
func fakeProc(t *testing.T, port, pid int, name string) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "proc/net/tcp"), fmt.Sprintf(
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
			"   0: 0100007F:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n", port))
	writeFile(t, filepath.Join(root, fmt.Sprintf("proc/%d/comm", pid)), name+"\n")
	if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("proc/%d/fd", pid)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("socket:[4242]", filepath.Join(root, fmt.Sprintf("proc/%d/fd/5", pid))); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestPortsNotLocal(t *testing.T) {
	t.Parallel()
	cfg := loopback(t, 4222, 0)
	cfg.Network.ListenAddress = "192.0.2.1" // TEST-NET: never this host's
	expect(t, run(t, ports{}, realEnv(cfg, noDNS{}))[0], Fail, "not an address of this host")
}

func TestPortsHeldByThisBroker(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StatsPort = testutil.FreePort(t)
	devbroker.StartConfig(t, env, cfg)
	rs := run(t, ports{}, realEnv(cfg, noDNS{}))
	expect(t, item(t, rs, fmt.Sprintf("client %d", cfg.Network.ClientPort)), Pass, "held by this broker (it answers as "+cfg.Identity)
	expect(t, item(t, rs, fmt.Sprintf("monitoring %d", cfg.StatsPort)), Pass, "held by this broker")
}

func TestSRV(t *testing.T) {
	t.Parallel()
	expect(t, one(t, srv{}, hostEnv(t, "tuned", nil)), Skip, "use_srv = false")
	cfg := parse(t, "identity = nats1.example.net\nplugin.choria.network.peers = nats1.example.net\n")
	expect(t, one(t, srv{}, realEnv(cfg, noDNS{})), Skip, "peers listed")

	cfg = parse(t, "identity = nats1.example.net\n")
	records := fakeDNS{srv: map[string][]*net.SRV{"_mcollective-broker._tcp.example.net": {
		{Target: "nats1.example.net.", Port: 4223}, {Target: "nats2.example.net.", Port: 4223}}}}
	r := one(t, srv{}, realEnv(cfg, records))
	expect(t, r, Pass, "2 records: nats1.example.net:4223, nats2.example.net:4223")
	if r.Item != "_mcollective-broker._tcp.example.net" {
		t.Errorf("item %q", r.Item)
	}
	expect(t, one(t, srv{}, realEnv(cfg, fakeDNS{})), Pass, "no records: a single broker")
	expect(t, one(t, srv{}, realEnv(cfg, fakeDNS{failing: true})), Warn, "server misbehaving")

	// net.peers checks what SRV returned: nats2 does not resolve.
	rs := run(t, peers{}, realEnv(cfg, records))
	expect(t, item(t, rs, "nats1.example.net:4223"), Pass, "this broker")
	r = item(t, rs, "nats2.example.net:4223")
	expect(t, r, Fail, "nats2.example.net does not resolve")
	expect(t, one(t, peers{}, realEnv(cfg, fakeDNS{failing: true})), Skip, "see net.srv")
}

// The peer check against a running 3-member cluster: all answer; a member
// whose peers do not trust us; a member down; a member from another CA.
func TestPeersCluster(t *testing.T) {
	env := devbroker.Prepare(t)
	cfgs := devbroker.ClusterConfigs(t, env, 3)
	var bs []*devbroker.Broker
	for _, c := range cfgs {
		bs = append(bs, devbroker.StartConfig(t, env, c))
	}
	devbroker.WaitRoutes(t, bs, 2, 30*time.Second)
	peer := func(i int) string { return cfgs[0].Network.Peers[i] }

	rs := run(t, peers{}, realEnv(cfgs[0], noDNS{}))
	expect(t, item(t, rs, peer(0)), Pass, "this broker")
	expect(t, item(t, rs, peer(1)), Pass, "answers TLS as broker2.example.net with CN=broker2.example.net from our CA")
	expect(t, item(t, rs, peer(2)), Pass, "answers TLS as broker3.example.net")

	// This member is running: its own ports are held by itself.
	for _, r := range run(t, ports{}, realEnv(cfgs[0], noDNS{})) {
		expect(t, r, Pass, "held by this broker (it answers as broker1.example.net)")
	}

	t.Run("by name from SRV", func(t *testing.T) {
		cfg := *cfgs[0]
		cfg.Network.Peers, cfg.UseSRV, cfg.SRVDomain = nil, true, "example.net"
		dns := fakeDNS{hosts: map[string][]string{}, srv: map[string][]*net.SRV{}}
		for i, c := range cfgs {
			name := fmt.Sprintf("broker%d.example.net", i+1)
			dns.hosts[name] = []string{"127.0.0.1"}
			dns.srv["_mcollective-broker._tcp.example.net"] = append(dns.srv["_mcollective-broker._tcp.example.net"], &net.SRV{Target: name + ".", Port: uint16(c.Network.PeerPort)})
		}
		for _, r := range run(t, peers{}, realEnv(&cfg, dns)) {
			expect(t, r, Pass)
		}
	})

	other := devbroker.Prepare(t)
	t.Run("peers refuse our certificate", func(t *testing.T) {
		// Our bundle trusts both CAs, but our certificate is from the other one.
		dir := t.TempDir()
		kp, err := other.PKI.CA.Issue(pki.IssueOptions{Name: "broker1.example.net", KeyType: "ec"})
		if err != nil {
			t.Fatal(err)
		}
		if err := kp.Save(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "ca.pem"), string(pki.CertsPEM(env.PKI.CA.Cert, other.PKI.CA.Cert)))
		cfg := *cfgs[0]
		cfg.Security.FileCertificate, cfg.Security.FileKey, cfg.Security.FileCA = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem")
		r := item(t, run(t, peers{}, realEnv(&cfg, noDNS{})), peer(1))
		expect(t, r, Fail, "refused this broker's certificate")
		if !strings.Contains(r.Fix, "same CA bundle and CRL") {
			t.Errorf("fix %q", r.Fix)
		}
	})

	bs[2].Stop()
	r := item(t, run(t, peers{}, realEnv(cfgs[0], noDNS{})), peer(2))
	expect(t, r, Fail, "cannot connect to "+peer(2), "connection refused")
	expect(t, item(t, run(t, peers{}, realEnv(cfgs[0], noDNS{})), peer(1)), Pass)

	// Another CA's broker takes the stopped member's cluster port.
	foreign := devbroker.ClusterConfigs(t, other, 1)[0]
	foreign.Network.Peers = cfgs[0].Network.Peers
	foreign.Network.PeerPort = cfgs[2].Network.PeerPort
	devbroker.StartConfig(t, other, foreign)
	r = item(t, run(t, peers{}, realEnv(cfgs[0], noDNS{})), peer(2))
	expect(t, r, Fail, "presents a certificate from another CA", "unknown CA")
	if !strings.Contains(r.Fix, env.PKI.CAFile()) {
		t.Errorf("fix does not name our CA: %q", r.Fix)
	}
}

// With route TLS off (old peers), a peer only has to answer with a route INFO.
func TestPeersWithoutTLS(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfgs := devbroker.ClusterConfigs(t, env, 2)
	var bs []*devbroker.Broker
	for _, c := range cfgs {
		c.Network.PeerTLS = false
		bs = append(bs, devbroker.StartConfig(t, env, c))
	}
	devbroker.WaitRoutes(t, bs, 1, 30*time.Second)
	r := item(t, run(t, peers{}, realEnv(cfgs[0], noDNS{})), cfgs[0].Network.Peers[1])
	expect(t, r, Pass, "answers as broker2.example.net")
	if !strings.Contains(r.Wanted, "route TLS off") {
		t.Errorf("wanted %q", r.Wanted)
	}
	expect(t, item(t, run(t, configConflicts{}, realEnv(cfgs[0], noDNS{})), "peer_tls"), Warn)
}
