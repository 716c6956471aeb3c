package preflight

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/choria-broker/choria-broker/internal/runner"
)

func TestConfigKeys(t *testing.T) {
	t.Parallel()
	expect(t, one(t, configKeys{}, hostEnv(t, "tuned", nil)), Pass)
	cfg := parse(t, "identity = b.example.net\nplugin.choria.network.client_prot = 4222\n")
	r := one(t, configKeys{}, hostEnv(t, "tuned", cfg))
	expect(t, r, Warn, "plugin.choria.network.client_port")

	// An unknown key that resembles no known one is still pointed out.
	cfg = parse(t, "identity = b.example.net\nfoo.bar = 1\n")
	expect(t, one(t, configKeys{}, hostEnv(t, "tuned", cfg)), Warn, "broker.conf:2: foo.bar: unknown setting")

	// go-choria's TLS hardening keys are implemented.
	cfg = parse(t, "identity = b.example.net\nplugin.security.cipher_suites = TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\nplugin.security.ecc_curves = X25519\n")
	expect(t, one(t, configKeys{}, hostEnv(t, "tuned", cfg)), Pass)
}

// A go-choria feature this broker lacks fails preflight, naming key and
// file:line; a harmless go-choria key is a warning.
func TestConfigKeysUnsupported(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `identity = b.example.net
plugin.choria.network.provisioning.client_password = s3cret
rpcaudit = true
plugin.security.issuer.choria.public = 0123abcd
plugin.choria.network.system_account = SYSTEM
plugin.choria.network.pprof_port = 6060
`)
	rs := run(t, configKeys{}, hostEnv(t, "tuned", cfg))
	if len(rs) != 4 {
		t.Fatalf("want 4 results, got %+v", rs)
	}
	r := item(t, rs, "plugin.choria.network.provisioning.client_password")
	expect(t, r, Fail, "broker.conf:2: plugin.choria.network.provisioning.client_password: not supported yet: provisioning")
	if !strings.Contains(r.Fix, "remove the setting, or keep go-choria's broker") {
		t.Errorf("fix %q", r.Fix)
	}
	expect(t, item(t, rs, "plugin.security.issuer.choria.public"), Fail, "broker.conf:4: plugin.security.issuer.choria.public: not supported yet: JWT and anonymous TLS logins")
	expect(t, item(t, rs, "rpcaudit"), Warn, "broker.conf:3: rpcaudit: a setting of the Choria server or client")
	expect(t, item(t, rs, "plugin.choria.network.system_account"), Warn, "broker.conf:5: plugin.choria.network.system_account: obsolete")
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

	// Peers without a routes password: only the certificate rule guards routes.
	cfg = parse(t, "identity = b.example.net\nplugin.choria.network.peers = a.example.net, b.example.net\n")
	expect(t, item(t, run(t, configConflicts{}, hostEnv(t, "tuned", cfg)), "peer_password"), Warn, "without plugin.choria.network.peer_password")
	cfg = parse(t, "identity = b.example.net\nplugin.choria.network.peers = a.example.net, b.example.net\nplugin.choria.network.peer_user = routes\nplugin.choria.network.peer_password = s3cret\n")
	expect(t, one(t, configConflicts{}, hostEnv(t, "tuned", cfg)), Pass)

	cfg = parse(t, "identity = b.example.net\nplugin.choria.network.roles = false\nplugin.choria.network.client_hosts = 10.0.0.0/8\n")
	rs := run(t, configConflicts{}, hostEnv(t, "tuned", cfg))
	if len(rs) != 2 || !strings.Contains(rs[1].Found, "client_hosts is set while") {
		t.Errorf("roles off with client_hosts: %+v", rs)
	}
}

// A catch-all role pattern is roles = false by another name: preflight
// must not pass it as "roles on".
func TestConfigConflictsOverbroad(t *testing.T) {
	t.Parallel()
	cfg := parse(t, "identity = b.example.net\nplugin.choria.security.privileged_users = .*\n")
	r := item(t, run(t, configConflicts{}, hostEnv(t, "tuned", cfg)), "roles")
	expect(t, r, Warn, `plugin.choria.security.privileged_users pattern ".*" matches every certificate name, node certificates such as "b.example.net" included: every such certificate may do anything, as with plugin.choria.network.roles = false`)
	if !strings.Contains(r.Fix, "anchor the pattern") {
		t.Errorf("fix %q", r.Fix)
	}

	// A client pattern matching node names hands them the client role.
	cfg = parse(t, "identity = b.example.net\nplugin.choria.security.certname_whitelist = \\.mcollective$, example\\.net$\n")
	rs := run(t, configConflicts{}, hostEnv(t, "tuned", cfg))
	if len(rs) != 1 {
		t.Fatalf("want one warning, got %+v", rs)
	}
	expect(t, rs[0], Warn, `certname_whitelist pattern "example\\.net$" matches node certificates such as "b.example.net"`, "client role")

	// Anchored patterns pass.
	cfg = parse(t, "identity = b.example.net\nplugin.choria.security.privileged_users = ^admin\\.privileged\\.mcollective$\n")
	expect(t, one(t, configConflicts{}, hostEnv(t, "tuned", cfg)), Pass)
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

// config.run fails with the message `run` stops with: runner.New's own
// refusal, for each kind it makes before any file (what config.Load
// refuses is config.load's).
func TestConfigRunAgreesWithRun(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ conf, says string }{
		"nothing enabled":                {"", "nothing to run: set plugin.choria.broker_network = true"},
		"only a ssldir":                  {"plugin.choria.ssldir = /nonexistent\n", "nothing to run"},
		"unsupported key":                {"plugin.choria.broker_network = true\nplugin.choria.network.provisioning.client_password = s3cret\n", "broker.conf:4: plugin.choria.network.provisioning.client_password: not supported yet"},
		"both, federation without hosts": {"plugin.choria.broker_network = true\nplugin.choria.broker_federation = true\n", "plugin.choria.federation_middleware_hosts is empty and plugin.choria.use_srv is off"},
		"lame duck grace":                {"plugin.choria.broker_network = true\nplugin.choria.network.lame_duck_grace = 1m\nplugin.choria.network.lame_duck_duration = 30s\n", "lame_duck_grace (1m0s) must be shorter"},
		"federation hosts":               {"plugin.choria.broker_federation = true\n", "plugin.choria.federation_middleware_hosts is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := parse(t, "identity = b.example.net\nplugin.choria.use_srv = false\n"+tc.conf)
			_, runErr := runner.New(cfg, slog.New(slog.DiscardHandler))
			if runErr == nil || !strings.Contains(runErr.Error(), tc.says) {
				t.Fatalf("run: %v, want %q", runErr, tc.says)
			}
			r := one(t, configRun{}, hostEnv(t, "tuned", cfg))
			expect(t, r, Fail)
			if r.Found != runErr.Error() {
				t.Errorf("preflight says %q, run says %q", r.Found, runErr)
			}
		})
	}
	for conf, found := range map[string]string{
		"plugin.choria.broker_network = true": "run starts the network broker",
		"plugin.choria.broker_network = true\nplugin.choria.broker_federation = true\nplugin.choria.federation_middleware_hosts = f.example.net:4222": "run starts the network broker and the federation broker",
	} {
		cfg := parse(t, "identity = b.example.net\nplugin.choria.use_srv = false\n"+conf)
		expect(t, one(t, configRun{}, hostEnv(t, "tuned", cfg)), Pass, found)
	}
}
