package preflight

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// networkBroker starts a network broker on env's CA with the given
// federation_brokers and returns its client address.
func networkBroker(t *testing.T, env *devenv.Env, edit func(*config.Config)) string {
	t.Helper()
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Network.ClientPort = testutil.FreePort(t)
	cfg.StatsPort = 0
	edit(cfg)
	devbroker.StartConfig(t, env, cfg)
	return fmt.Sprintf("127.0.0.1:%d", cfg.Network.ClientPort)
}

// federationConfig is a federation broker of cluster beta with a
// certificate named name from env's CA.
func federationConfig(t *testing.T, env *devenv.Env, name, federationHosts, collectiveHosts string) *config.Config {
	t.Helper()
	kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: name, KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "fed.pem"), filepath.Join(dir, "fed.key")
	if err := kp.Save(cert, key); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("identity = %s\nplugin.choria.use_srv = false\nplugin.choria.broker_federation = true\nplugin.choria.federation.cluster = beta\n"+
		"plugin.security.provider = file\nplugin.security.file.certificate = %s\nplugin.security.file.key = %s\nplugin.security.file.ca = %s\n",
		name, cert, key, env.PKI.CAFile())
	if federationHosts != "" {
		text += "plugin.choria.federation_middleware_hosts = " + federationHosts + "\n"
	}
	if collectiveHosts != "" {
		text += "plugin.choria.middleware_hosts = " + collectiveHosts + "\n"
	}
	return parse(t, text)
}

// TestFederationRole: preflight on a federation broker connects to the
// real network brokers of both sides with its certificate; the side whose
// brokers do not list it in federation_brokers fails with the setting and
// the pattern to add, the side that lists it passes.
func TestFederationRole(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	listed := networkBroker(t, env, func(c *config.Config) { c.Network.FederationBrokers = []string{`^fed\d+\.example\.net$`} })
	unlisted := networkBroker(t, env, func(c *config.Config) { c.Network.FederationBrokers = []string{`^fed\d+\.other\.net$`} })

	rs := run(t, federationRole{}, realEnv(federationConfig(t, env, "fed1.example.net", listed, unlisted), noDNS{}))
	if len(rs) != 2 {
		t.Fatalf("want one result a side: %+v", rs)
	}
	expect(t, item(t, rs, "federation nats://"+listed), Pass, "lets fed1.example.net subscribe to choria.federation.beta.federation")
	r := item(t, rs, "collective nats://"+unlisted)
	expect(t, r, Fail, "refuses fed1.example.net the subscription to choria.federation.beta.collective", "federation role")
	for _, want := range []string{"plugin.choria.network.federation_brokers", `^fed1\.example\.net$`, "plugin.choria.middleware_hosts"} {
		if !strings.Contains(r.Fix, want) {
			t.Errorf("fix does not name %q: %q", want, r.Fix)
		}
	}

	// Listed on both sides: both pass.
	for _, r := range run(t, federationRole{}, realEnv(federationConfig(t, env, "fed2.example.net", listed, listed), noDNS{})) {
		expect(t, r, Pass, "lets fed2.example.net subscribe")
	}

	t.Run("nodes denied", func(t *testing.T) {
		denying := networkBroker(t, env, func(c *config.Config) { c.Network.DenyServerConnections = true })
		r := item(t, run(t, federationRole{}, realEnv(federationConfig(t, env, "fed1.example.net", denying, listed), noDNS{})), "federation nats://"+denying)
		expect(t, r, Fail, "refuses the connection of fed1.example.net", "deny_server_connections")
		if !strings.Contains(r.Fix, `plugin.choria.network.federation_brokers and restart`) || !strings.Contains(r.Fix, `^fed1\.example\.net$`) {
			t.Errorf("fix %q", r.Fix)
		}
	})
}

// TestFederationRoleUnreachable: a broker that is down, one that accepts
// and never answers, and a side with no brokers configured each give a
// verdict that says so, within the dial bounds.
func TestFederationRoleUnreachable(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	down := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never a word
		}
	}()
	rs := run(t, federationRole{}, realEnv(federationConfig(t, env, "fed1.example.net", down, silent.Addr().String()), noDNS{}))
	r := item(t, rs, "federation nats://"+down)
	expect(t, r, Fail, "cannot connect to nats://"+down, "connection refused")
	if !strings.Contains(r.Fix, "plugin.choria.federation_middleware_hosts") {
		t.Errorf("fix %q", r.Fix)
	}
	expect(t, item(t, rs, "collective nats://"+silent.Addr().String()), Fail, "accepted the connection but did not complete the TLS and NATS handshake within")

	r = item(t, run(t, federationRole{}, realEnv(federationConfig(t, env, "fed1.example.net", "", down), noDNS{})), "federation")
	expect(t, r, Fail, "plugin.choria.federation_middleware_hosts is empty")

	cfg := federationConfig(t, env, "fed1.example.net", down, down)
	cfg.BrokerFederation = false
	expect(t, one(t, federationRole{}, realEnv(cfg, noDNS{})), Skip, "broker_federation is off")
}
