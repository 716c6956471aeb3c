package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil/puppetca"
)

// TestEnrollAndLiveCRL runs against a real Puppet CA: enroll submits an
// ECDSA certificate request, the test signs it with puppetserver, and the
// broker runs on that certificate while clients use the CA's RSA
// certificates. Then puppetserver revokes a connected node: the broker,
// fetching the CRL from the CA, disconnects it and refuses it again, with
// no file copied by hand and no restart. With the CA stopped the last good
// CRL stays in force and the failure shows; restarted, refreshes resume.
func TestEnrollAndLiveCRL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Puppet Server twice; runs in the full pass")
	}
	t.Parallel()
	ca := puppetca.Start(t)
	for _, n := range []string{"rip.mcollective", "node1.example.net", "node2.example.net"} {
		ca.Generate(t, n)
	}

	dir := t.TempDir()
	var mu sync.Mutex
	var said []string
	submitted := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := pki.Enroll(context.Background(), pki.EnrollOptions{
			Dir: dir, Identity: "broker.example.net", Names: []string{"localhost", "127.0.0.1"},
			Host: puppetca.Host, Port: ca.Port(), Wait: 2 * time.Minute,
			Progress: func(msg string) {
				mu.Lock()
				said = append(said, msg)
				mu.Unlock()
				if strings.Contains(msg, "submitted") {
					once.Do(func() { close(submitted) })
				}
			},
		})
		done <- err
	}()
	select {
	case <-submitted:
	case err := <-done:
		t.Fatalf("enroll ended before submitting: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("no certificate request within 2 minutes")
	}
	ca.Sign(t, "broker.example.net")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("enroll: %v\n%s", err, strings.Join(said, "\n"))
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("enroll did not finish after signing")
	}

	cfg := baseConfig()
	cfg.Security.Provider = "puppet"
	cfg.Security.SSLDir = dir
	cfg.Security.PuppetCAHost, cfg.Security.PuppetCAPort = puppetca.Host, ca.Port()
	cfg.Security.CRLRefreshInterval = time.Second
	cfg.Security.CRLDisconnect = true
	b, logs := startBroker(t, cfg)
	if _, ok := b.cert.Load().PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("broker key is %T, want ECDSA", b.cert.Load().PrivateKey)
	}

	cas, err := pki.ReadCertificates(ca.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	dial := func(name string, opts ...nats.Option) (*nats.Conn, error) {
		kp, err := pki.LoadKeyPair(ca.CertPath(name), ca.KeyPath(name))
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		for _, c := range cas {
			roots.AddCert(c)
		}
		return connect(b.ClientURL(), &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*kp.TLS()}, ServerName: "localhost", MinVersion: tls.VersionTLS12}, opts...)
	}
	client, err := dial("rip.mcollective")
	if err != nil {
		t.Fatalf("RSA client refused by the ECDSA broker: %v", err)
	}
	defer client.Close()
	closed := make(chan struct{})
	node, err := dial("node1.example.net", nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatalf("node refused: %v", err)
	}
	defer node.Close()

	ca.Revoke(t, "node1.example.net")
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatalf("revoked node still connected 15s after puppetserver revoked it\n%s", logs)
	}
	if nc, err := dial("node1.example.net"); err == nil {
		nc.Close()
		t.Fatal("revoked node admitted again")
	}
	if !client.IsConnected() {
		t.Fatal("a valid client was dropped with the revoked node")
	}
	if len(logs.lines("certificate was revoked", "node1.example.net")) == 0 {
		t.Fatalf("disconnect not logged\n%s", logs)
	}

	// The CA goes away: the CRL stays, and the failure shows.
	ca.Stop(t)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not %s within 60s\n%s", what, logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("refresh failing", func() bool { return b.CRL().RefreshFailing })
	if nc, err := dial("node1.example.net"); err == nil {
		nc.Close()
		t.Fatal("revoked node admitted while the CA is away")
	}
	if b.CRL().ThisUpdate.IsZero() {
		t.Fatal("the CRL was dropped while the CA is away")
	}
	ca.Restart(t)
	waitFor("refreshing again", func() bool { return !b.CRL().RefreshFailing })
	ca.Revoke(t, "node2.example.net")
	waitFor("node2 refused", func() bool {
		nc, err := dial("node2.example.net")
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
}
