package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// TestFederationRoleHint: a go-choria federation broker whose certificate
// is not in federation_brokers is refused its subjects as a node; the log
// says which setting to change and the pattern to add. Other refusals, and
// refusals of a real federation broker, carry no such hint.
func TestFederationRoleHint(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.FederationBrokers = []string{`^fed\d*\.example\.net$`}
	b, logs := startBroker(t, cfg)

	// Named like a federation broker, but not one the setting matches.
	gofed := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "fed-beta.other.net"}))
	if _, err := gofed.SubscribeSync("choria.federation.beta.collective"); err != nil {
		t.Fatal(err)
	}
	gofed.Publish("mcollective.broadcast.agent.rpcutil", []byte("x"))
	gofed.Flush()
	// A known federation broker publishing where none may.
	fed := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "fed1.example.net"}))
	fed.Publish("choria.federation.beta.federation", []byte("x"))
	fed.Flush()

	refused := func(cert, subject string) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if l := logs.lines("subject refused", attr("certificate", cert), attr("subject", subject)); len(l) == 1 {
				return l[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("no refusal of %s for %s logged\n%s", subject, cert, logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	line := refused("fed-beta.other.net", "choria.federation.beta.collective")
	for _, want := range []string{"plugin.choria.network.federation_brokers", `pattern=^fed-beta\.other\.net$`, "role=node", "the node role"} {
		if !strings.Contains(line, want) {
			t.Errorf("hint lacks %q: %s", want, line)
		}
	}
	for _, l := range []string{refused("fed-beta.other.net", "mcollective.broadcast.agent.rpcutil"), refused("fed1.example.net", "choria.federation.beta.federation")} {
		if strings.Contains(l, "federation_brokers") || strings.Contains(l, "pattern=") {
			t.Errorf("hint on a refusal it does not fit: %s", l)
		}
	}
}

// A wrong system user password is logged as a refusal naming the
// certificate and the setting, without the password tried.
func TestSystemLoginRefusalLogged(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.SystemUser, cfg.Network.SystemPassword = "system", "right-one"
	b, logs := startBroker(t, cfg)
	tc := clientTLS(p.ca.Cert, p.issue(t, pki.IssueOptions{Name: "ops.mcollective"}))
	if nc, err := connect(b.ClientURL(), tc, nats.UserInfo("system", "guessed-one")); err == nil {
		nc.Close()
		t.Fatal("wrong password admitted")
	}
	l := logs.lines("client connection refused", attr("reason", "wrong system user password"), attr("certificate", "ops.mcollective"), "plugin.choria.network.system.password")
	if len(l) != 1 || strings.Contains(l[0], "guessed-one") || b.SystemRefused() != 1 {
		t.Errorf("refusal lines %q, count %d\n%s", l, b.SystemRefused(), logs)
	}
}

// A system account connection is closed when its certificate is revoked,
// as any client's is.
func TestSystemLoginRevoked(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Security.CRLDisconnect = true
	cfg.Network.SystemUser, cfg.Network.SystemPassword = "system", "right-one"
	b, logs := startBroker(t, cfg)
	kp := p.issue(t, pki.IssueOptions{Name: "ops.mcollective"})
	closed := make(chan struct{})
	nc, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, kp), nats.UserInfo("system", "right-one"), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if n := b.ConnectionsByRole()[systemRole]; n != 1 {
		t.Fatalf("%d system connections, want 1", n)
	}
	p.ca.Revoke(kp.Leaf())
	now := time.Now()
	crl, err := p.ca.CRLChainPEM(now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, "crl.pem", crl)
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("revoked system connection still open\n%s", logs)
	}
}
