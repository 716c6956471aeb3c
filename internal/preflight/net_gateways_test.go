package preflight

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

func TestGatewaysOff(t *testing.T) {
	t.Parallel()
	expect(t, one(t, gateways{}, realEnv(loopback(t, 4222, 0), noDNS{})), Skip, "gateway_port = 0")
}

// A gateway port without remotes takes only what gateway_brokers names.
func TestGatewaysAcceptOnly(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Network.GatewayPort = 7222
	expect(t, item(t, run(t, gateways{}, realEnv(cfg, noDNS{})), "remotes"), Warn, "every gateway is refused")
	cfg.Network.GatewayBrokers = []string{`^gw\d+\.`}
	expect(t, item(t, run(t, gateways{}, realEnv(cfg, noDNS{})), "remotes"), Pass, `accepts gateways whose certificate matches`, `^gw\d+\.`)
}

// plainGateway runs a bare engine with a plaintext gateway named name: an
// old go-choria gateway, as far as the wire shows.
func plainGateway(t *testing.T, name string) int {
	t.Helper()
	opts := &server.Options{ServerName: "old.example.net", Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		Gateway: server.GatewayOpts{Name: name, Host: "127.0.0.1", Port: testutil.FreePort(t)}}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("plain gateway not ready")
	}
	return opts.Gateway.Port
}

// TestGatewaysRemotes dials remotes as EAST would: a running WEST of our
// CA passes; one listed under the wrong name, a dead one, a plaintext one
// and one that refuses our certificate fail, each saying why; the same
// plaintext one with tls.disable is a warning. The gateway port of a
// running EAST is held by itself.
func TestGatewaysRemotes(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	cfgs := devbroker.ClusterConfigs(t, env, 2)
	east, west := cfgs[0], cfgs[1]
	eastPort, westPort := testutil.FreePort(t), testutil.FreePort(t)
	for _, c := range cfgs {
		c.Network.Peers = nil
	}
	remote := func(name string, port int, tls config.RemoteTLS) config.GatewayRemote {
		return config.GatewayRemote{Name: name, URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", port)}, TLS: tls}
	}
	west.Network.ClusterName, west.Network.GatewayPort = "WEST", westPort
	west.Network.GatewayRemotes, west.Network.Gateways = []string{"EAST"}, []config.GatewayRemote{remote("EAST", eastPort, config.RemoteTLS{})}
	devbroker.StartConfig(t, env, west)
	old := plainGateway(t, "OLD")
	dead := testutil.FreePort(t)

	east.Network.ClusterName, east.Network.GatewayPort = "EAST", eastPort
	east.Network.Gateways = []config.GatewayRemote{
		remote("WEST", westPort, config.RemoteTLS{}), remote("SOUTH", westPort, config.RemoteTLS{}),
		remote("NORTH", dead, config.RemoteTLS{}), remote("OLD", old, config.RemoteTLS{}),
	}
	for _, r := range east.Network.Gateways {
		east.Network.GatewayRemotes = append(east.Network.GatewayRemotes, r.Name)
	}
	at := func(name string, port int) string { return fmt.Sprintf("%s 127.0.0.1:%d", name, port) }
	rs := run(t, gateways{}, realEnv(east, noDNS{}))
	expect(t, item(t, rs, "this broker"), Pass, "CN=broker1.example.net is a gateway by 127.0.0.1")
	expect(t, item(t, rs, at("WEST", westPort)), Pass, "answers TLS as cluster WEST (broker2.example.net) with CN=broker2.example.net")
	expect(t, item(t, rs, at("SOUTH", westPort)), Fail, "answers as cluster WEST, not SOUTH")
	expect(t, item(t, rs, at("NORTH", dead)), Fail, "cannot connect", "connection refused")
	r := item(t, rs, at("OLD", old))
	expect(t, r, Fail, "answers in plaintext")
	if !strings.Contains(r.Fix, "gateway_remote.OLD.tls.disable = true") {
		t.Errorf("fix %q", r.Fix)
	}

	east.Network.Gateways[3].TLS.Disable = true
	expect(t, item(t, run(t, gateways{}, realEnv(east, noDNS{})), at("OLD", old)), Warn, "answers in plaintext as cluster OLD (old.example.net)", "crosses in clear")
	east.Network.Gateways[3].TLS.Disable = false

	t.Run("remote refuses our certificate", func(t *testing.T) {
		// Not naming 127.0.0.1, WEST's only remote host, nor any pattern of its.
		dir := t.TempDir()
		kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: "broker1.example.net", KeyType: "ec"})
		if err != nil {
			t.Fatal(err)
		}
		if err := kp.Save(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")); err != nil {
			t.Fatal(err)
		}
		cfg := *east
		cfg.Security.FileCertificate, cfg.Security.FileKey = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
		rs := run(t, gateways{}, realEnv(&cfg, noDNS{}))
		r := item(t, rs, at("WEST", westPort))
		expect(t, r, Fail, "refused this broker's certificate")
		if !strings.Contains(r.Fix, "gateway_brokers") {
			t.Errorf("fix %q", r.Fix)
		}
		expect(t, item(t, rs, "this broker"), Warn, "refused: not a gateway", "not a host of the gateway remotes' urls (127.0.0.1)")
	})

	// EAST running holds its own gateway port.
	east.Network.Gateways = east.Network.Gateways[:1]
	east.Network.GatewayRemotes = []string{"WEST"}
	devbroker.StartConfig(t, env, east)
	expect(t, item(t, run(t, ports{}, realEnv(east, noDNS{})), fmt.Sprintf("gateway %d", eastPort)), Pass, "held by this broker (it answers as broker1.example.net)")
}

// Plaintext and unchecked gateways are warned about before anything dials.
func TestGatewaysConflicts(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `identity = broker.example.net
plugin.choria.network.gateway_port = 7222
plugin.choria.network.gateway_remotes = OLD, WEST
plugin.choria.network.gateway_remote.OLD.urls = old.example.net:7222
plugin.choria.network.gateway_remote.OLD.tls.disable = true
plugin.choria.network.gateway_remote.WEST.urls = west.example.net:7222
plugin.choria.network.gateway_remote.WEST.tls.verify = false
`)
	rs := run(t, configConflicts{}, realEnv(cfg, noDNS{}))
	if len(rs) != 2 {
		t.Fatalf("want two warnings: %+v", rs)
	}
	expect(t, rs[0], Warn, "gateway_remote.OLD.tls.disable = true: the gateway port is plaintext")
	expect(t, rs[1], Warn, "gateway_remote.WEST.tls.verify = false")
}
