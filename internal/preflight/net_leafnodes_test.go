package preflight

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// The leafnode check against a running hub: it answers and takes the
// leaf's certificate (its Streams' domain pointed out); a name that does
// not resolve, a port nobody listens on, a hub that refuses the leaf's
// certificate and a hub whose cluster has the leaf's name each fail with
// the fix.
func TestLeafnodesCheck(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	hubCfg, leafCfg := devbroker.LeafConfigs(t, env)
	hubCfg.Network.Stream.Store, hubCfg.Network.Stream.Domain = t.TempDir(), "central"
	devbroker.StartConfig(t, env, hubCfg)
	expect(t, one(t, leafnodes{}, realEnv(hubCfg, noDNS{})), Skip, "no plugin.choria.network.leafnode_remotes")

	r := one(t, leafnodes{}, realEnv(leafCfg, noDNS{}))
	expect(t, r, Warn, "answers as hub.example.net with CN=hub.example.net", "takes this broker's certificate", "domain central")
	if r.Fix != "set plugin.choria.network.stream.domain = central here, so that clients on this leaf reach the hub's Streams" {
		t.Errorf("fix %q", r.Fix)
	}
	domain := leafCfg.Clone()
	domain.Network.Stream.Domain = "central"
	expect(t, one(t, leafnodes{}, realEnv(domain, noDNS{})), Pass, "answers as hub.example.net")

	// The ports check knows the hub's leafnode port as the hub's.
	expect(t, item(t, run(t, ports{}, realEnv(hubCfg, noDNS{})), fmt.Sprintf("leafnode %d", hubCfg.Network.LeafnodePort)), Pass, "held by this broker (it answers as hub.example.net)")

	// The leaf's certificate is not one the hub takes as a leafnode.
	stranger := leafCfg.Clone()
	stranger.Security.FileCertificate, stranger.Security.FileKey = env.PKI.CertFile(env.PKI.Nodes[0]), env.PKI.KeyFile(env.PKI.Nodes[0])
	r = one(t, leafnodes{}, realEnv(stranger, noDNS{}))
	expect(t, r, Fail, "refused this broker's certificate")
	if want := "plugin.choria.network.leafnode_brokers must match"; !strings.Contains(r.Fix, want) {
		t.Errorf("fix %q", r.Fix)
	}

	down := leafCfg.Clone()
	down.Raw[config.LeafRemotePrefix+"hub.url"] = fmt.Sprintf("127.0.0.1:%d, hub.invalid:7422", testutil.FreePort(t))
	rs := run(t, leafnodes{}, realEnv(down, noDNS{}))
	if len(rs) != 2 {
		t.Fatalf("want a result per url: %+v", rs)
	}
	expect(t, rs[0], Fail, "connection refused")
	expect(t, rs[1], Fail, "hub.invalid does not resolve")

	// A hub in a cluster named as this leaf is (its identity, unclustered)
	// says so in the INFO it sends first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "INFO {\"server_name\":\"hub9\",\"cluster\":%q,\"tls_required\":true}\r\n", leafCfg.Identity)
			time.AfterFunc(3*time.Second, func() { c.Close() })
		}
	}()
	clash := leafCfg.Clone()
	clash.Raw[config.LeafRemotePrefix+"hub.url"] = l.Addr().String()
	r = one(t, leafnodes{}, realEnv(clash, noDNS{}))
	expect(t, r, Fail, "in a cluster named leaf1.example.net, as this broker's is")
	if !strings.Contains(r.Fix, "plugin.choria.network.gateway_name") {
		t.Errorf("fix %q", r.Fix)
	}
}

// config.conflicts: a leafnode port nobody may use, patterns without a
// port, and remotes with TLS checks off are warned about.
func TestLeafnodeConflicts(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `identity = b.example.net
plugin.choria.network.leafnode_port = 7422
plugin.choria.network.leafnode_remotes = a, b
plugin.choria.network.leafnode_remote.a.url = hub.example.net
plugin.choria.network.leafnode_remote.a.tls.disable = true
plugin.choria.network.leafnode_remote.b.url = hub.example.net
plugin.choria.network.leafnode_remote.b.tls.verify = false
`)
	rs := run(t, configConflicts{}, realEnv(cfg, noDNS{}))
	expect(t, item(t, rs, "leafnode_brokers"), Warn, "every leafnode is refused")
	expect(t, item(t, rs, "leafnode remote a"), Warn, "tls.disable = true")
	expect(t, item(t, rs, "leafnode remote b"), Warn, "tls.verify = false")

	cfg = parse(t, "identity = b.example.net\nplugin.choria.network.leafnode_brokers = ^leaf1\\.example\\.net$\n")
	expect(t, one(t, configConflicts{}, realEnv(cfg, noDNS{})), Warn, "no leafnode port is open")

	// A pattern that matches node names is too broad, as for the roles.
	cfg = parse(t, "identity = b.example.net\nplugin.choria.network.leafnode_port = 7422\nplugin.choria.network.leafnode_brokers = .*\n")
	expect(t, item(t, run(t, configConflicts{}, realEnv(cfg, noDNS{})), "roles"), Warn, "plugin.choria.network.leafnode_brokers pattern \".*\" matches every certificate name")
}
