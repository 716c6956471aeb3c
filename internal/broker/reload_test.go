package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// TestCRLRevocationWhileRunning revokes a certificate by rewriting crl.pem
// under a running broker: its next connection is refused within 5 s, with
// no restart, while connected clients stay connected.
func TestCRLRevocationWhileRunning(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, logs := startBroker(t, p.config())
	stays := p.issue(t, pki.IssueOptions{Name: "stays.privileged.mcollective"})
	goes := p.issue(t, pki.IssueOptions{Name: "goes.privileged.mcollective"})

	staying := mustConnect(t, b.ClientURL(), clientTLS(p.ca.Cert, stays))
	before := mustConnect(t, b.ClientURL(), clientTLS(p.ca.Cert, goes))
	roundTrip(t, before, staying, "before")

	p.ca.Revoke(goes.Leaf())
	p.writeCRL(t)
	revokedAt := time.Now()

	deadline := revokedAt.Add(5 * time.Second)
	for {
		nc, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, goes))
		if err != nil {
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("revoked certificate still admitted 5s after the CRL changed\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(logs.lines(attr("reason", "revoked"), "CN=goes.privileged.mcollective")) == 0 {
		t.Fatalf("no refusal logged\n%s", logs)
	}
	// The files as an attribute, not a Go slice in the message.
	if len(logs.lines("reloaded after a change", attr("files", p.path("ca.pem")+","+p.path("crl.pem")))) == 0 || len(logs.lines("reloaded [")) != 0 {
		t.Fatalf("reload not logged with its files\n%s", logs)
	}
	if !staying.IsConnected() {
		t.Fatal("a valid client was disconnected by the CRL reload")
	}
	roundTrip(t, staying, staying, "after")
	if _, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, stays)); err != nil {
		t.Fatalf("valid certificate refused after the reload: %v", err)
	}
}

// TestBrokenCRLKeepsPrevious checks that a CRL replaced by garbage or by a
// foreign CA's CRL is refused and the previous one stays in force.
func TestBrokenCRLKeepsPrevious(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	revoked := p.issue(t, pki.IssueOptions{Name: "revoked.example.net"})
	p.ca.Revoke(revoked.Leaf())
	p.writeCRL(t)
	b, logs := startBroker(t, p.config())

	writeFile(t, p.path("crl.pem"), "-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
	if err := b.reloadTrust(); err == nil {
		t.Fatal("garbage CRL accepted")
	}
	if _, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, revoked)); err == nil {
		t.Fatal("revoked certificate admitted after a broken CRL")
	}
	if err := b.Reload(); err == nil {
		t.Fatal("SIGHUP reload accepted a broken CRL")
	}
	if !strings.Contains(logs.String(), "keeping") {
		t.Fatalf("no log that the previous CRL is kept\n%s", logs)
	}
}

// TestStaleCRLWarnsAndEnforces checks that a CRL past its nextUpdate is
// still enforced, with a warning.
func TestStaleCRLWarnsAndEnforces(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	revoked := p.issue(t, pki.IssueOptions{Name: "revoked.example.net"})
	p.ca.Revoke(revoked.Leaf())
	now := time.Now()
	der, err := p.ca.CRL(now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, "crl.pem", pemCRL(der))
	b, logs := startBroker(t, p.config())
	if len(logs.lines("level=WARN", "next update was due")) == 0 {
		t.Fatalf("no warning for a stale CRL\n%s", logs)
	}
	if _, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, revoked)); err == nil {
		t.Fatal("stale CRL not enforced")
	}
}

// TestReloadSwapsCertificate checks SIGHUP's reload serves a renewed
// broker certificate to new connections.
func TestReloadSwapsCertificate(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, _ := startBroker(t, p.config())
	client := p.issue(t, pki.IssueOptions{Name: "rip.mcollective"})
	first := mustConnect(t, b.ClientURL(), clientTLS(p.ca.Cert, client))
	serial := func() string {
		nc := mustConnect(t, b.ClientURL(), clientTLS(p.ca.Cert, client))
		defer nc.Close()
		cs, err := nc.TLSConnectionState()
		if err != nil {
			t.Fatal(err)
		}
		return cs.PeerCertificates[0].SerialNumber.String()
	}
	old := serial()
	renewed := p.issue(t, pki.IssueOptions{Name: "broker.example.net", DNSNames: []string{"localhost"}, IPs: p.broker.Leaf().IPAddresses})
	p.write(t, "broker.pem", pki.CertsPEM(renewed.Chain...))
	p.writeKey(t, "broker.key", renewed)
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got == old || got != renewed.Leaf().SerialNumber.String() {
		t.Fatalf("serving serial %s, want the renewed %s", got, renewed.Leaf().SerialNumber)
	}
	if !first.IsConnected() {
		t.Fatal("reload dropped a connected client")
	}
	// A key that does not match is refused and the old pair stays.
	other := p.issue(t, pki.IssueOptions{Name: "other.example.net"})
	p.writeKey(t, "broker.key", other)
	if err := b.Reload(); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("mismatched key: %v", err)
	}
	if got := serial(); got != renewed.Leaf().SerialNumber.String() {
		t.Fatal("a failed reload changed the served certificate")
	}
}
