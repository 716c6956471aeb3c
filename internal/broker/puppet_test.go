package broker

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil/puppetca"
)

// TestRealPuppetCA runs the broker with provider puppet on the ssldir of a
// real Puppet CA (Debian's puppetserver): its ca.pem is a root plus an
// intermediate and its crl.pem holds two CRLs. CA-signed client and node
// certificates get in, revoked ones do not, and a revocation made while
// the broker runs takes effect without a restart.
func TestRealPuppetCA(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Puppet Server (about 20 s); runs in the full pass")
	}
	t.Parallel()
	ca := puppetca.Start(t)
	ca.Generate(t, "broker.example.net", "localhost", "127.0.0.1")
	for _, n := range []string{"rip.mcollective", "node1.example.net", "node2.example.net", "node3.example.net"} {
		ca.Generate(t, n)
	}
	ca.Revoke(t, "node3.example.net")

	cfg := baseConfig()
	cfg.Security.Provider = "puppet"
	cfg.Security.SSLDir = ca.SSLDir()
	b, logs := startBroker(t, cfg)
	if b.trust.Load().CRL.Count != 2 || len(b.trust.Load().CAs) != 2 {
		t.Fatalf("want 2 CAs and 2 CRLs from Puppet, got %d and %d", len(b.trust.Load().CAs), b.trust.Load().CRL.Count)
	}

	dial := func(name string) error {
		kp, err := pki.LoadKeyPair(ca.CertPath(name), ca.KeyPath(name))
		if err != nil {
			t.Fatal(err)
		}
		cas, err := pki.ReadCertificates(ca.CACertPath())
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		for _, c := range cas {
			roots.AddCert(c)
		}
		nc, err := connect(b.ClientURL(), &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*kp.TLS()}, ServerName: "localhost", MinVersion: tls.VersionTLS12})
		if err == nil {
			t.Cleanup(nc.Close)
		}
		return err
	}
	for _, n := range []string{"rip.mcollective", "node1.example.net", "node2.example.net"} {
		if err := dial(n); err != nil {
			t.Fatalf("%s refused: %v\n%s", n, err, logs)
		}
	}
	if err := dial("node3.example.net"); err == nil {
		t.Fatal("revoked node3 admitted")
	}
	if len(logs.lines(attr("reason", "revoked"), "node3.example.net")) == 0 {
		t.Fatalf("no refusal logged for node3\n%s", logs)
	}

	// puppetserver ca revoke rewrites crl.pem; the broker follows.
	ca.Revoke(t, "node2.example.net")
	deadline := time.Now().Add(5 * time.Second)
	for dial("node2.example.net") == nil {
		if time.Now().After(deadline) {
			t.Fatal("node2 still admitted 5s after puppetserver revoked it")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
