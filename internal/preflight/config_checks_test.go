package preflight

import (
	"strings"
	"testing"
)

func TestConfigKeys(t *testing.T) {
	t.Parallel()
	expect(t, one(t, configKeys{}, hostEnv(t, "tuned", nil)), Pass)
	cfg := parse(t, "identity = b.example.net\nplugin.choria.network.client_prot = 4222\n")
	r := one(t, configKeys{}, hostEnv(t, "tuned", cfg))
	expect(t, r, Warn, "plugin.choria.network.client_port")
}

func TestConfigConflicts(t *testing.T) {
	t.Parallel()
	expect(t, one(t, configConflicts{}, hostEnv(t, "tuned", nil)), Pass)

	cfg := parse(t, `identity = b.example.net
plugin.choria.broker_federation = true
plugin.choria.federation.collectives = eu, us
`)
	expect(t, item(t, run(t, configConflicts{}, hostEnv(t, "tuned", cfg)), "federation"), Warn, "federation.collectives = eu, us")

	// Without peers route TLS does not matter.
	cfg = parse(t, "identity = b.example.net\nplugin.choria.network.peer_tls = false\n")
	expect(t, one(t, configConflicts{}, hostEnv(t, "tuned", cfg)), Pass)
	cfg = parse(t, "identity = b.example.net\nplugin.choria.network.peer_tls = false\nplugin.choria.network.peers = a.example.net, b.example.net\n")
	expect(t, item(t, run(t, configConflicts{}, hostEnv(t, "tuned", cfg)), "peer_tls"), Warn, "peer_tls = false")

	cfg = parse(t, "identity = b.example.net\nplugin.choria.network.roles = false\nplugin.choria.network.client_hosts = 10.0.0.0/8\n")
	rs := run(t, configConflicts{}, hostEnv(t, "tuned", cfg))
	if len(rs) != 2 || !strings.Contains(rs[1].Found, "client_hosts is set while") {
		t.Errorf("roles off with client_hosts: %+v", rs)
	}
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	expect(t, one(t, maxConnections{}, hostEnv(t, "tuned", nil)), Pass)
	env := hostEnv(t, "tuned", nil)
	env.Nodes = 60000
	r := one(t, maxConnections{}, env)
	expect(t, r, Fail, "max_connections = 50000")
	if !strings.Contains(r.Fix, "max_connections = 66000") {
		t.Errorf("fix %q", r.Fix)
	}
}
