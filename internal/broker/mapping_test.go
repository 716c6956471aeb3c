package broker

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// A mapped subject arrives at its destination only; the engine checks a
// publisher's rights on the destination, so a mapping from a subject a
// node may publish (a reply) to one it may not (a request) is refused,
// and a mapping grants no role anything it lacks.
func TestMappings(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.Mappings = []config.Mapping{
		{Name: "partitions", Source: "in.registration.*.>", Destination: "registration.{{partition(5,1)}}.{{wildcard(1)}}.>"},
		{Name: "legacy", Source: "legacy.registration", Destination: "mcollective.broadcast.agent.registration"},
		{Name: "sneak", Source: "mcollective.reply.sneak.1", Destination: "mcollective.broadcast.agent.rpcutil"},
		// What README warns of: replies moved to a subject nodes read.
		{Name: "leak", Source: "mcollective.reply.*.*", Destination: "mcollective.broadcast.agent.registration"},
	}
	b, logs := startBroker(t, cfg)
	if l := logs.lines("subject mapping", attr("name", "partitions"), attr("destination", "registration.{{partition(5,1)}}.{{wildcard(1)}}.>")); len(l) != 1 {
		t.Errorf("mapping not logged at start\n%s", logs)
	}
	admin := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"}))
	node := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "node1.example.net"}))

	dest, err := admin.SubscribeSync("registration.>")
	if err != nil {
		t.Fatal(err)
	}
	src, err := admin.SubscribeSync("in.>")
	if err != nil {
		t.Fatal(err)
	}
	admin.Flush()
	if err := admin.Publish("in.registration.node1.example.net", []byte("x")); err != nil {
		t.Fatal(err)
	}
	admin.Flush()
	m, err := dest.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("nothing arrived at the destination: %v", err)
	}
	if !regexp.MustCompile(`^registration\.[0-4]\.node1\.example\.net$`).MatchString(m.Subject) {
		t.Errorf("arrived on %s", m.Subject)
	}
	if m, err := src.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("the source subject got it too: %s", m.Subject)
	}

	// A node may publish registration, so through a mapping too, from a
	// subject it may not publish itself.
	reg, err := admin.SubscribeSync("mcollective.broadcast.agent.registration")
	if err != nil {
		t.Fatal(err)
	}
	admin.Flush()
	if !outcome(t, reg, node, func() { node.Publish("legacy.registration", []byte("x")); node.Flush() }) {
		t.Error("a node's mapped registration was refused")
	}

	// A reply subject it may publish, mapped to a request: refused, and
	// logged on the destination.
	req, err := admin.SubscribeSync("mcollective.broadcast.agent.rpcutil")
	if err != nil {
		t.Fatal(err)
	}
	admin.Flush()
	if outcome(t, req, node, func() { node.Publish("mcollective.reply.sneak.1", []byte("x")); node.Flush() }) {
		t.Fatal("a mapping let a node publish a request")
	}
	if l := logs.lines("subject refused", attr("subject", "mcollective.broadcast.agent.rpcutil"), attr("certificate", "node1.example.net")); len(l) != 1 {
		t.Errorf("refusal not logged on the destination\n%s", logs)
	}

	// A mapping moves traffic to whoever reads the destination: a reply
	// to a client reaches another node.
	other := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "node2.example.net"}))
	leaked, err := other.SubscribeSync("mcollective.broadcast.agent.>")
	if err != nil {
		t.Fatal(err)
	}
	other.Flush()
	if !outcome(t, leaked, node, func() { node.Publish(replySubject("rip.mcollective")+".1", []byte("x")); node.Flush() }) {
		t.Error("the reply did not reach the mapping's destination")
	}
}

// What the engine refuses stops the broker before it starts, with the
// file:line of the key and the engine's reason.
func TestCheckMappings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, source, destination string
		want                      string
	}{
		{"unknown function", "in.*", "out.{{nosuch(1)}}", `broker.conf:4: plugin.choria.network.mapping.m.destination: the engine refuses "out.{{nosuch(1)}}" as the destination of "in.*": `},
		{"wildcard out of range", "in.*", "out.{{wildcard(2)}}", `broker.conf:4: plugin.choria.network.mapping.m.destination: the engine refuses`},
		{"> on one side only", "in.>", "out", `broker.conf:4: plugin.choria.network.mapping.m.destination: the engine refuses "out" as the destination of "in.>"`},
		{"bad source", "in..x", "out", `broker.conf:3: plugin.choria.network.mapping.m.source: "in..x" is not a subject`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse("broker.conf", []byte("plugin.choria.broker_network = true\nplugin.choria.network.mapping.names = m\n"+
				"plugin.choria.network.mapping.m.source = "+tc.source+"\nplugin.choria.network.mapping.m.destination = "+tc.destination+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckConfig(cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s…", err, tc.want)
			}
		})
	}
	// A good one passes.
	cfg := config.Default()
	cfg.Network.Mappings = []config.Mapping{{Name: "m", Source: "in.registration.*.>", Destination: "registration.{{partition(5,1)}}.{{wildcard(1)}}.>"}}
	if err := CheckConfig(cfg); err != nil {
		t.Fatal(err)
	}
}
