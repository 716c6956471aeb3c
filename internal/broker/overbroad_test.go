package broker

import (
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// TestCatchAllPrivilegedWarned: privileged_users = .* makes every node
// certificate privileged, which is roles = false by another name. The
// broker says so at start; the connection below shows why it must.
func TestCatchAllPrivilegedWarned(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	// A node certificate beside the broker's, as in a Puppet ssldir.
	node := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})
	p.write(t, "node1.example.net.pem", pki.CertsPEM(node.Chain...))
	cfg := p.config()
	cfg.Security.PrivilegedUsers = []string{".*"}
	b, logs := startBroker(t, cfg)

	want := `plugin.choria.security.privileged_users pattern \".*\" matches every certificate name, node certificates such as \"broker.example.net\" included: every such certificate may do anything, as with plugin.choria.network.roles = false`
	if len(logs.lines("level=WARN", "PATTERN TOO BROAD", want)) != 1 {
		t.Fatalf("no warning saying %s\n%s", want, logs)
	}

	// The behaviour warned about: the node certificate reads every subject
	// and publishes requests to the whole fleet.
	rc := connectRole(t, b, p, node)
	observer := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "observer.privileged.mcollective"}))
	all, err := rc.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	rc.Flush()
	if !outcome(t, all, rc, func() { observer.Publish("mcollective.node.node2.example.net", []byte("x")); observer.Flush() }) {
		t.Fatal("node certificate could not subscribe to > under privileged_users = .*")
	}
	req, err := observer.SubscribeSync("mcollective.broadcast.agent.rpcutil")
	if err != nil {
		t.Fatal(err)
	}
	observer.Flush()
	if !outcome(t, req, rc, func() { rc.Publish("mcollective.broadcast.agent.rpcutil", []byte("x")); rc.Flush() }) {
		t.Fatal("node certificate could not publish a request under privileged_users = .*")
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.ConnectionsByRole()[authz.Privileged] != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("connections by role %v, want the node counted privileged", b.ConnectionsByRole())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDefaultPatternsNotWarned: the shipped patterns match no node name.
func TestDefaultPatternsNotWarned(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	node := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})
	p.write(t, "node1.example.net.pem", pki.CertsPEM(node.Chain...))
	cfg := p.config()
	cfg.Network.FederationBrokers = []string{`^fed\d*\.example\.net$`}
	_, logs := startBroker(t, cfg)
	if l := logs.lines("PATTERN TOO BROAD"); len(l) != 0 {
		t.Fatalf("default patterns warned: %q", l)
	}
}
