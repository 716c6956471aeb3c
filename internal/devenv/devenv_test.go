package devenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/broker"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/limits"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// TestDevBrokerRuns prepares the development environment, runs the broker
// from the broker.conf it wrote, and connects with the client and node
// certificates it made; the revoked node is refused.
func TestDevBrokerRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env, err := Prepare(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network.ClientPort != 4222 || cfg.StatsPort != 8222 || cfg.Security.Provider != "puppet" {
		t.Fatalf("dev broker.conf: %+v", cfg)
	}
	// run raises the open-file limit to max_connections + 1024 and warns
	// when it cannot; the dev broker's must fit without root.
	if hard, err := limits.HardNoFile(); err == nil && hard > 1124 {
		if _, err := limits.RaiseNoFile(uint64(cfg.Network.MaxConnections) + 1024); err != nil {
			t.Errorf("dev max_connections %d: %v", cfg.Network.MaxConnections, err)
		}
	}
	client, err := config.Load(env.ClientConf)
	if err != nil {
		t.Fatal(err)
	}
	if client.Security.FileCertificate != env.PKI.CertFile(env.PKI.Client) || len(client.MiddlewareHosts) != 1 {
		t.Fatalf("dev client.conf: %+v", client.Security)
	}
	cfg.Network.ClientPort, cfg.StatsPort = 0, 0 // free port; parallel tests
	b, err := broker.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(15 * time.Second):
		t.Fatal("not ready")
	}

	dial := func(name string) (*nats.Conn, error) {
		kp, err := pki.LoadKeyPair(env.PKI.CertFile(name), env.PKI.KeyFile(name))
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(env.PKI.CA.Cert)
		tc := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*kp.TLS()}, ServerName: "localhost"}
		return nats.Connect(b.ClientURL(), nats.Secure(tc), nats.NoReconnect(), nats.Timeout(3*time.Second))
	}
	for _, name := range append([]string{env.PKI.Client}, env.PKI.Nodes...) {
		nc, err := dial(name)
		if err != nil {
			t.Fatalf("%s refused: %v", name, err)
		}
		nc.Close()
	}
	if nc, err := dial(env.PKI.Revoked); err == nil {
		nc.Close()
		t.Fatalf("revoked %s admitted", env.PKI.Revoked)
	}
}

// TestPrepareReuses checks a second run keeps the CA and certificates.
func TestPrepareReuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := Prepare(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	caBefore, _ := os.ReadFile(first.PKI.CAFile())
	certBefore, _ := os.ReadFile(first.PKI.CertFile(first.PKI.Nodes[0]))
	second, err := Prepare(dir, Options{ClientPort: 14222})
	if err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(second.PKI.CAFile())
	certAfter, _ := os.ReadFile(second.PKI.CertFile(second.PKI.Nodes[0]))
	if string(caBefore) != string(caAfter) || string(certBefore) != string(certAfter) {
		t.Fatal("a second dev run replaced the CA or certificates")
	}
	cfg, err := config.Load(second.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network.ClientPort != 14222 {
		t.Fatalf("client port %d", cfg.Network.ClientPort)
	}
	// The CRL still revokes the revoked node after reuse.
	id, err := pki.Load(pki.ResolveFiles(cfg), cfg.Identity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rev, err := pki.ReadCertificates(second.PKI.CertFile(second.PKI.Revoked))
	if err != nil {
		t.Fatal(err)
	}
	if err := id.Trust.VerifyClient(rev, time.Now()); err == nil {
		t.Fatal("revoked node verifies after reuse")
	}
}

// TestPrepareStatsOff: StatsOff writes stats_port = 0, which the broker
// reads as monitoring off.
func TestPrepareStatsOff(t *testing.T) {
	t.Parallel()
	env, err := Prepare(t.TempDir(), Options{StatsPort: 9999, StatsOff: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StatsPort != 0 || env.StatsPort != 0 {
		t.Fatalf("stats_port %d, env %d; want 0 (off)", cfg.StatsPort, env.StatsPort)
	}
}
