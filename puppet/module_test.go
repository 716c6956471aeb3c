package puppet

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/choria-broker/choria-broker/dist/disttest"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

func TestMain(m *testing.M) { disttest.Main(m) }

// The seed's manifests (docs "NATS Middleware"), with class nats renamed
// choria_broker and the comma the cluster example lacks added.
const (
	seedSingle = `node "puppet.example.net" {
  class{"choria_broker": }
}
`
	seedCluster = `node "nats1.example.net" {
  class{"choria_broker":
    routes_password => "Vrph54FBcIvdM",
    servers => [
      "nats1.example.net",
      "nats2.example.net",
      "nats3.example.net",
      "nats4.example.net",
      "nats5.example.net"
    ],
  }
}
`
	seedCollectd = `node "puppet.example.net" {
  class{"choria_broker":
    manage_collectd => true
  }
}
`
	// Not the seed's: Choria Streams, with its retentions and replicas.
	streams = `class{"choria_broker":
  stream_store     => "/var/lib/choria-broker/streams",
  stream_max_store => "2G",
  stream_retention => { "event" => "30d", "advisory" => "7d" },
  stream_replicas  => { "event" => 1, "leader_election" => 1 },
}
`
	// Not the seed's: websockets (the port from hiera, as it must be free)
	// and subject mappings, in the order given.
	websocket = `class{"choria_broker":
  websocket_advertise => "ws.example.net:443",
  mappings            => {
    "partitions" => { "source" => "in.registration.*.>", "destination" => "registration.{{partition(5,1)}}.{{wildcard(1)}}.>" },
    "legacy"     => { "source" => "legacy.registration", "destination" => "mcollective.broadcast.agent.registration" },
  },
}
`
	// Not the seed's: the README's gateways (gateway_port comes from Hiera).
	gateways = `class{"choria_broker":
  cluster_name    => "EAST",
  gateway_brokers => ['^gw\d+\.example\.net$'],
  gateway_remotes => {
    "WEST" => { "urls" => ["gw1.west.example.net:7222", "gw2.west.example.net:7222"], "tls_verify" => true },
    "OLD"  => { "urls" => ["old.example.net:7222"], "tls_disable" => true },
  },
}
`
	// Not the seed's: the README's federation broker.
	federation = `class{"choria_broker":
  network_broker              => false,
  federation_broker           => true,
  federation_cluster          => "london",
  federation_middleware_hosts => ["fed1.example.net:4222", "fed2.example.net:4222"],
  collective_middleware_hosts => ["nats1.london.example.net:4222", "nats2.london.example.net:4222"],
}
`
)

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestModuleLint: puppet parser validate, puppet epp validate and
// puppet-lint (warnings fail) pass; the fact parses; metadata.json names
// the module.
func TestModuleLint(t *testing.T) {
	t.Parallel()
	var meta struct{ Name, Version string }
	if err := json.Unmarshal([]byte(read(t, "metadata.json")), &meta); err != nil {
		t.Fatalf("metadata.json: %v", err)
	}
	if !strings.HasSuffix(meta.Name, "-choria_broker") || meta.Version == "" {
		t.Errorf("metadata.json: name %q version %q", meta.Name, meta.Version)
	}
	manifests, _ := filepath.Glob("manifests/*.pp")
	templates, _ := filepath.Glob("templates/*.epp")
	if len(manifests) == 0 || len(templates) == 0 {
		t.Fatal("no manifests or templates")
	}
	check := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	t.Run("puppet", func(t *testing.T) {
		puppet := testutil.RequireProgram(t, "puppet")
		check(puppet, append([]string{"parser", "validate"}, manifests...)...)
		check(puppet, append([]string{"epp", "validate"}, templates...)...)
	})
	t.Run("puppet-lint", func(t *testing.T) {
		lint := testutil.RequireProgram(t, "puppet-lint")
		// --relative: the module is checked as choria_broker from its own root.
		check(lint, "--relative", "--fail-on-warnings", "manifests")
	})
	t.Run("ruby", func(t *testing.T) {
		ruby := testutil.RequireProgram(t, "ruby")
		if out, err := exec.Command(ruby, "-c", "lib/facter/choria_broker.rb").CombinedOutput(); err != nil {
			t.Errorf("ruby -c: %v\n%s", err, out)
		}
	})
}

// scratch is one puppet apply of a seed manifest into a scratch root.
type scratch struct {
	dir, root, manifest, certname string
	user, group                   string
	env                           *devenv.Env
	clientPort, clusterPort       int
	monitorPort                   int
	websocketPort                 int // 0: not set
	gatewayPort                   int // 0: not set
}

// TestSeedManifests applies the seed's three manifests (and the README's
// federation broker, whose broker.conf is only loaded) with real Puppet,
// each into its own scratch root (root => ..., no package or service, the
// test's user, free ports, a development ssldir, one init system each),
// then: the files are the ones dist/ ships, broker.conf says what the
// manifest asked for, a second apply changes nothing, and a broker started
// from the written broker.conf (and its copied certificates) accepts a
// Choria client.
func TestSeedManifests(t *testing.T) {
	if testing.Short() {
		t.Skip("runs puppet apply and brokers; runs in the full pass")
	}
	t.Parallel()
	puppet := testutil.RequireProgram(t, "puppet")
	module, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	env := disttest.DevEnv(t, filepath.Join(base, "dev"))
	for _, name := range []string{"puppet.example.net", "nats1.example.net"} {
		disttest.IssueServer(t, env, name)
	}
	// Puppet finds a module by its directory's name.
	modules := filepath.Join(base, "modules")
	if err := os.MkdirAll(modules, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(module, filepath.Join(modules, "choria_broker")); err != nil {
		t.Fatal(err)
	}

	leafPort := testutil.FreePort(t)
	for _, c := range []struct{ name, manifest, certname, provider string }{
		{"single", seedSingle, "puppet.example.net", "sysvinit"},
		{"cluster", seedCluster, "nats1.example.net", "systemd"},
		{"collectd", seedCollectd, "puppet.example.net", "upstart"},
		{"federation", federation, "puppet.example.net", "systemd"},
		{"streams", streams, "puppet.example.net", "systemd"},
		{"websocket", websocket, "puppet.example.net", "systemd"},
		{"gateways", gateways, "puppet.example.net", "systemd"},
		{"leafnodes", leafnodes(t, env, base, leafPort), "puppet.example.net", "systemd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := &scratch{dir: t.TempDir(), manifest: c.manifest, certname: c.certname, env: env,
				clientPort: testutil.FreePort(t), clusterPort: testutil.FreePort(t), monitorPort: testutil.FreePort(t)}
			s.root = filepath.Join(s.dir, "root")
			if c.name == "websocket" {
				s.websocketPort = testutil.FreePort(t)
			}
			if c.name == "gateways" {
				s.gatewayPort = testutil.FreePort(t)
			}
			s.hiera(t, c.provider)
			if code, out := s.apply(t, puppet, modules); code != 2 {
				t.Fatalf("first puppet apply: exit %d, want 2 (changes, no failures)\n%s", code, out)
			}
			if code, out := s.apply(t, puppet, modules); code != 0 {
				t.Errorf("second puppet apply: exit %d, want 0 (nothing to change)\n%s", code, out)
			}
			s.checkFiles(t, c.name, c.provider)
			if c.name == "leafnodes" {
				checkLeafnodes(t, s, env, leafPort)
			}
			if c.name != "federation" {
				s.runBroker(t)
			}
		})
	}
}

// hiera writes the data that turns the seed's manifest into a scratch run:
// automatic parameter lookup, so the manifest stays the seed's.
func (s *scratch) hiera(t *testing.T, provider string) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	s.user, s.group = u.Username, g.Name
	data := map[string]any{
		"choria_broker::root":             s.root,
		"choria_broker::manage_package":   false,
		"choria_broker::manage_service":   false,
		"choria_broker::service_provider": provider,
		"choria_broker::user":             u.Username,
		"choria_broker::group":            g.Name,
		"choria_broker::ssldir":           s.env.PKI.SSLDir,
		"choria_broker::listen_address":   "127.0.0.1",
		"choria_broker::client_port":      s.clientPort,
		"choria_broker::cluster_port":     s.clusterPort,
		"choria_broker::monitor_port":     s.monitorPort,
	}
	if s.websocketPort > 0 {
		data["choria_broker::websocket_port"] = s.websocketPort
	}
	if s.gatewayPort > 0 {
		data["choria_broker::gateway_port"] = s.gatewayPort
	}
	// JSON is YAML.
	text, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(s.dir, "data", "common.yaml"), string(text))
	write(t, filepath.Join(s.dir, "hiera.yaml"), fmt.Sprintf(`---
version: 5
defaults:
  datadir: %q
  data_hash: yaml_data
hierarchy:
  - name: test
    path: common.yaml
`, filepath.Join(s.dir, "data")))
	write(t, filepath.Join(s.dir, "site.pp"), s.manifest)
}

// apply runs puppet apply with every Puppet directory in the scratch dir
// and returns its --detailed-exitcodes code: 0 no change, 2 changes, 4 or
// 6 failures.
func (s *scratch) apply(t *testing.T, puppet, modules string) (int, string) {
	t.Helper()
	args := []string{"apply", "--detailed-exitcodes", "--color=false", "--certname", s.certname,
		"--modulepath", modules, "--hiera_config", filepath.Join(s.dir, "hiera.yaml")}
	for _, d := range []string{"confdir", "codedir", "vardir", "logdir", "rundir", "publicdir"} {
		args = append(args, "--"+d, filepath.Join(s.dir, "puppet", d))
	}
	cmd := exec.Command(puppet, append(args, filepath.Join(s.dir, "site.pp"))...)
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("puppet apply: %v", err)
	}
	return 0, string(out)
}

// same fails the test, naming the first differing line, unless what the
// module wrote is the file dist/ ships.
func same(t *testing.T, what, got, distFile string) {
	t.Helper()
	want := read(t, distFile)
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("%s differs from %s at line %d:\n got: %q\nwant: %q", what, distFile, i+1, gl, wl)
			return
		}
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// unrooted is a written file with the scratch root taken out of its paths
// and the test's user and group put back to choria: what it would say on a
// real node.
func (s *scratch) unrooted(t *testing.T, path string) string {
	lines := strings.Split(strings.ReplaceAll(read(t, filepath.Join(s.root, path)), s.root, ""), "\n")
	for i, l := range lines {
		for _, kv := range [][2]string{{"User=", s.user}, {"Group=", s.group}, {"setuid ", s.user}, {"setgid ", s.group}} {
			if l == kv[0]+kv[1] {
				lines[i] = kv[0] + "choria"
			}
		}
	}
	return strings.Join(lines, "\n")
}

func (s *scratch) checkFiles(t *testing.T, name, provider string) {
	dist := filepath.Join(disttest.RepoRoot(t), "dist")
	// The service files are dist/'s, for the node's init system.
	switch provider {
	case "systemd":
		same(t, "the systemd unit", s.unrooted(t, "etc/systemd/system/choria-broker.service"), filepath.Join(dist, "systemd/choria-broker.service"))
	case "upstart":
		same(t, "the upstart job", s.unrooted(t, "etc/init/choria-broker.conf"), filepath.Join(dist, "upstart/choria-broker.conf"))
	case "sysvinit":
		same(t, "the init script", read(t, filepath.Join(s.root, "etc/init.d/choria-broker")), filepath.Join(dist, "sysvinit/choria-broker"))
		defaults := s.unrooted(t, "etc/default/choria-broker")
		for _, want := range []string{"DAEMON=/usr/bin/choria-broker\n", "CONFIG=/etc/choria/broker.conf\n", "NOFILE=51200\n", "STOP_TIMEOUT=90\n"} {
			if !strings.Contains(defaults, want) {
				t.Errorf("/etc/default/choria-broker lacks %q:\n%s", want, defaults)
			}
		}
	}

	// The seed's sysctl settings, never below what the kernel has.
	sysctl := read(t, filepath.Join(s.root, "etc/sysctl.d/60-choria-broker.conf"))
	for key, seed := range map[string]int{"net.core.somaxconn": 4092, "net.ipv4.tcp_max_syn_backlog": 8192} {
		want := seed
		if cur, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(cur))); err == nil && n > want {
				want = n
			}
		}
		if line := fmt.Sprintf("%s = %d\n", key, want); !strings.Contains(sysctl, line) {
			t.Errorf("sysctl file lacks %q:\n%s", line, sysctl)
		}
	}

	collectd := filepath.Join(s.root, "etc/collectd/collectd.conf.d/choria-broker.conf")
	if name == "collectd" {
		got := strings.Replace(read(t, collectd), fmt.Sprintf("127.0.0.1:%d", s.monitorPort), "127.0.0.1:8222", 1)
		same(t, "the collectd snippet", got, filepath.Join(dist, "collectd/choria-broker.conf"))
	} else if _, err := os.Stat(collectd); err == nil {
		t.Error("collectd snippet written without manage_collectd")
	}

	// The broker's own copy of its certificate and key, the key private.
	ssl := filepath.Join(s.root, "var/lib/choria-broker/ssl")
	key := filepath.Join(ssl, "private_keys", s.certname+".pem")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("copied key %s: %v (mode %v), want 0600", key, err, fi.Mode().Perm())
	}
	if read(t, key) != read(t, s.env.PKI.KeyFile(s.certname)) || read(t, filepath.Join(ssl, "crl.pem")) != read(t, s.env.PKI.CRLFile()) {
		t.Error("the copied key or CRL differs from the ssldir's")
	}

	conf := filepath.Join(s.root, "etc/choria/broker.conf")
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("broker.conf: %v (mode %v), want 0640", err, fi.Mode().Perm())
	}
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatalf("written broker.conf: %v\n%s", err, read(t, conf))
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("written broker.conf warns: %q", cfg.Warnings)
	}
	network := name != "federation"
	if cfg.Identity != s.certname || cfg.BrokerNetwork != network || (network && cfg.Network.ClientPort != s.clientPort) ||
		cfg.StatsPort != s.monitorPort || cfg.Security.Provider != "puppet" || cfg.Security.SSLDir != ssl {
		t.Errorf("broker.conf: identity %q, broker_network %v, client port %d, stats port %d, provider %q, ssldir %q",
			cfg.Identity, cfg.BrokerNetwork, cfg.Network.ClientPort, cfg.StatsPort, cfg.Security.Provider, cfg.Security.SSLDir)
	}
	if name == "federation" {
		if !cfg.BrokerFederation || cfg.Federation.Cluster != "london" ||
			!slices.Equal(cfg.Federation.MiddlewareHosts, []string{"fed1.example.net:4222", "fed2.example.net:4222"}) ||
			!slices.Equal(cfg.MiddlewareHosts, []string{"nats1.london.example.net:4222", "nats2.london.example.net:4222"}) {
			t.Errorf("federation: broker_federation %v, cluster %q, federation hosts %v, collective hosts %v",
				cfg.BrokerFederation, cfg.Federation.Cluster, cfg.Federation.MiddlewareHosts, cfg.MiddlewareHosts)
		}
	}
	store := filepath.Join(s.root, "var/lib/choria-broker/streams")
	if name == "streams" {
		sc := cfg.Network.Stream
		if sc.Store != store || sc.MaxStore != "2G" || sc.EventRetention != 30*24*time.Hour || sc.AdvisoryRetention != 7*24*time.Hour ||
			sc.MachineRetention != 24*time.Hour || sc.EventReplicas != 1 || sc.LeaderElectionReplicas != 1 || sc.MachineReplicas != -1 {
			t.Errorf("streams settings %+v", sc)
		}
		if fi, err := os.Stat(store); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
			t.Errorf("stream store %s: %v, want a 0750 directory", store, err)
		}
	} else if cfg.Network.Stream.Store != "" {
		t.Errorf("Streams on without stream_store: %q", cfg.Network.Stream.Store)
	}
	if name == "websocket" {
		want := []config.Mapping{
			{Name: "partitions", Source: "in.registration.*.>", Destination: "registration.{{partition(5,1)}}.{{wildcard(1)}}.>"},
			{Name: "legacy", Source: "legacy.registration", Destination: "mcollective.broadcast.agent.registration"},
		}
		if n := cfg.Network; n.WebsocketPort != s.websocketPort || n.WebsocketAdvertise != "ws.example.net:443" || !slices.Equal(n.Mappings, want) {
			t.Errorf("websocket: port %d, advertise %q, mappings %+v", n.WebsocketPort, n.WebsocketAdvertise, n.Mappings)
		}
	} else if cfg.Network.WebsocketPort != 0 || len(cfg.Network.Mappings) != 0 {
		t.Errorf("websocket port %d or mappings %v without the parameters", cfg.Network.WebsocketPort, cfg.Network.Mappings)
	}
	if name == "gateways" {
		want := []config.GatewayRemote{
			{Name: "OLD", URLs: []string{"nats://old.example.net:7222"}, TLS: config.RemoteTLS{Disable: true}},
			{Name: "WEST", URLs: []string{"nats://gw1.west.example.net:7222", "nats://gw2.west.example.net:7222"}},
		}
		n := cfg.Network
		if n.ClusterName != "EAST" || n.GatewayPort != s.gatewayPort || !slices.Equal(n.GatewayBrokers, []string{`^gw\d+\.example\.net$`}) ||
			fmt.Sprint(n.Gateways) != fmt.Sprint(want) {
			t.Errorf("gateways: cluster %q, port %d, brokers %q, remotes %+v", n.ClusterName, n.GatewayPort, n.GatewayBrokers, n.Gateways)
		}
	} else if cfg.Network.GatewayPort != 0 {
		t.Errorf("gateways on without gateway_port: %d", cfg.Network.GatewayPort)
	}
	if name == "cluster" {
		want := []string{"nats1.example.net", "nats2.example.net", "nats3.example.net", "nats4.example.net", "nats5.example.net"}
		if !slices.Equal(cfg.Network.Peers, want) || cfg.Network.PeerPort != s.clusterPort ||
			cfg.Network.PeerUser != "routes" || cfg.Network.PeerPassword != "Vrph54FBcIvdM" {
			t.Errorf("cluster: peers %v, peer port %d, routes user %q password %q", cfg.Network.Peers, cfg.Network.PeerPort,
				cfg.Network.PeerUser, cfg.Network.PeerPassword)
		}
	} else if len(cfg.Network.Peers) > 0 || cfg.Network.PeerPassword != "" {
		t.Errorf("single broker with peers %v", cfg.Network.Peers)
	}
}

// runBroker starts the broker from the written broker.conf and connects a
// Choria client; for the cluster, the other four members do not exist, and
// the broker serves its clients all the same.
func (s *scratch) runBroker(t *testing.T) {
	p := disttest.StartBroker(t, filepath.Join(s.root, "etc/choria/broker.conf"))
	nc := disttest.Connect(t, s.env, s.clientPort, p.Alive)
	if err := nc.Publish("mcollective.broadcast.agent.rpcutil", []byte("{}")); err != nil {
		t.Error(err)
	}
	if err := nc.Flush(); err != nil {
		t.Errorf("client of the broker from the written broker.conf: %v", err)
	}
	if s.websocketPort > 0 {
		url := fmt.Sprintf("wss://127.0.0.1:%d", s.websocketPort)
		ws, err := nats.Connect(url, nats.Secure(devbroker.TLS(t, s.env, s.env.PKI.Client)), nats.Timeout(5*time.Second), nats.NoReconnect())
		if err != nil {
			t.Errorf("client over %s: %v", url, err)
		} else {
			if _, err := ws.RTT(); err != nil {
				t.Errorf("client over %s: %v", url, err)
			}
			ws.Close()
		}
	}
	p.Stop(t)
}

// leafnodes is a hub's leafnode port and a leaf's remote with every key,
// its files real ones: the written broker.conf is run.
func leafnodes(t *testing.T, env *devenv.Env, dir string, port int) string {
	creds := filepath.Join(dir, "hub.creds")
	write(t, creds, string(userCreds(t)))
	return fmt.Sprintf(`class{"choria_broker":
  leafnode_port    => %d,
  leafnode_brokers => ['^leaf\d+\.example\.net$'],
  cluster_name     => "BRANCH1",
  stream_domain    => "central",
  leafnode_remotes => {
    "hub" => {
      "url"         => ["127.0.0.1:%d", "127.0.0.1:%d"],
      "account"     => "choria",
      "credentials" => %q,
      "tls_cert"    => %q,
      "tls_key"     => %q,
      "tls_ca"      => %q,
      "tls_verify"  => true,
    },
  },
}
`, port, testutil.FreePort(t), testutil.FreePort(t), creds, env.PKI.CertFile("puppet.example.net"), env.PKI.KeyFile("puppet.example.net"), env.PKI.CAFile())
}

// checkLeafnodes: broker.conf says what the leafnodes manifest asked for.
func checkLeafnodes(t *testing.T, s *scratch, env *devenv.Env, port int) {
	cfg, err := config.Load(filepath.Join(s.root, "etc/choria/broker.conf"))
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Network
	if n.LeafnodePort != port || !slices.Equal(n.LeafnodeBrokers, []string{`^leaf\d+\.example\.net$`}) || n.ClusterName != "BRANCH1" || n.Stream.Domain != "central" {
		t.Errorf("leafnode port %d, brokers %q, cluster %q, domain %q", n.LeafnodePort, n.LeafnodeBrokers, n.ClusterName, n.Stream.Domain)
	}
	rs, err := cfg.LeafRemotes()
	if err != nil || len(rs) != 1 {
		t.Fatalf("remotes %+v: %v", rs, err)
	}
	r := rs[0]
	if r.Name != "hub" || len(r.URLs) != 2 || r.TLSCert != env.PKI.CertFile("puppet.example.net") || r.TLSKey != env.PKI.KeyFile("puppet.example.net") ||
		r.TLSCA != env.PKI.CAFile() || !r.TLSVerify || r.TLSDisable || !strings.HasSuffix(r.Credentials, "hub.creds") {
		t.Errorf("remote %+v", r)
	}
	if err := cfg.LeafRemoteFiles(rs); err != nil {
		t.Error(err)
	}
}

// userCreds is a NATS .creds file: a user JWT signed by an account, and the user's seed.
func userCreds(t *testing.T) []byte {
	account, _ := nkeys.CreateAccount()
	user, _ := nkeys.CreateUser()
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
