package broker

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// TestMissingCRLStaysInForce runs the trust watcher on a Puppet ssldir
// whose optional crl.pem is absent at start-up: the broker starts without a
// CRL, saying so; once the file appears its CRL is in force, and removing
// the file again keeps that CRL, logging an error on every retry until the
// file is back.
func TestMissingCRLStaysInForce(t *testing.T) {
	t.Parallel()
	env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: 1, StatsPort: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	crl := env.PKI.CRLFile()
	good, err := os.ReadFile(crl)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(crl); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	b, err := newBroker(cfg, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatalf("start-up without the optional crl.pem: %v", err)
	}
	if len(logs.lines("level=WARN", "does not exist: revoked certificates will be admitted")) == 0 {
		t.Fatalf("no warning that the broker runs without a CRL\n%s", logs)
	}
	revoked, err := pki.LoadKeyPair(env.PKI.CertFile(env.PKI.Revoked), env.PKI.KeyFile(env.PKI.Revoked))
	if err != nil {
		t.Fatal(err)
	}
	isRefused := func() bool { return b.trust.Load().VerifyClient(revoked.Chain, time.Now()) != nil }
	if isRefused() {
		t.Fatal("revoked certificate refused without a CRL")
	}

	b.trustRetry = 50 * time.Millisecond // set before the watcher starts
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.watchTrust(ctx, 10*time.Millisecond)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	if err := pki.WriteFile(crl, good, 0o644); err != nil {
		t.Fatal(err)
	}
	wait("the CRL that appeared to be loaded", isRefused)

	if err := os.Remove(crl); err != nil {
		t.Fatal(err)
	}
	const failed = "CA or CRL cannot be read, keeping the previous ones"
	wait("the error to be logged again on retries", func() bool { return len(logs.lines("level=ERROR", failed, "does not exist")) >= 3 })
	if !isRefused() {
		t.Fatal("revoked certificate admitted after crl.pem was removed")
	}
	if _, bad := b.PKIStatus().Failing[pki.PartCRL]; !bad {
		t.Fatalf("PKIStatus does not show the CRL failing: %+v", b.PKIStatus())
	}
	if b.TrustStatus().CRLNextUpdate.IsZero() {
		t.Fatal("the CRL in force went with its file")
	}

	if err := pki.WriteFile(crl, good, 0o644); err != nil {
		t.Fatal(err)
	}
	wait("the restored CRL to clear the failure", func() bool { return len(b.PKIStatus().Failing) == 0 })
	if !isRefused() {
		t.Fatal("revoked certificate admitted after crl.pem was restored")
	}
}
