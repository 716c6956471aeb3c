package main

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/puppetca"
)

// TestEnrollThenRun is the operator's path on a real Puppet CA: a
// configuration without plugin.choria.ssldir on a host whose Puppet ssldir
// exists but holds no broker certificate. run first fails naming where it
// looked and the enroll command; `enroll --config F` is signed by
// puppetserver; then `run --config F`, the file unchanged, starts on the
// enrolled ECDSA certificate. The default locations are scratch dirs.
func TestEnrollThenRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Puppet Server; runs in the full pass")
	}
	t.Parallel()
	ca := puppetca.Start(t)
	ca.Generate(t, "rip.mcollective")

	root := t.TempDir()
	enrollDir, puppetDir := filepath.Join(root, "enroll-ssl"), filepath.Join(root, "puppet-ssl")
	caPEM, err := os.ReadFile(ca.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(filepath.Join(puppetDir, "certs", "ca.pem"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	conf := filepath.Join(root, "broker.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `identity = broker.example.net
loglevel = info
plugin.choria.broker_network = true
plugin.choria.network.listen_address = 127.0.0.1
plugin.choria.network.client_port = %d
plugin.choria.use_srv = false
plugin.security.provider = puppet
plugin.choria.puppetca_host = %s
plugin.choria.puppetca_port = %d
plugin.choria.security.enroll_names = localhost, 127.0.0.1
`, port, puppetca.Host, ca.Port()), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (*exec.Cmd, *testutil.Buffer) {
		cmd, out := command(t, args...)
		cmd.Env = append(cmd.Env, "CHORIA_BROKER_TEST_ENROLL_SSLDIR="+enrollDir, "CHORIA_BROKER_TEST_PUPPET_SSLDIR="+puppetDir)
		return cmd, out
	}
	start := func(cmd *exec.Cmd) chan error {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
		})
		return done
	}
	await := func(out *testutil.Buffer, done chan error, text string, limit time.Duration) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !strings.Contains(out.String(), text) {
			select {
			case err := <-done:
				done <- err
				t.Fatalf("exited (%v) before %q:\n%s", err, text, out)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q within %s:\n%s", text, limit, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	exit := func(out *testutil.Buffer, done chan error, limit time.Duration) error {
		t.Helper()
		select {
		case err := <-done:
			done <- err
			return err
		case <-time.After(limit):
			t.Fatalf("still running after %s:\n%s", limit, out)
		}
		return nil
	}

	// Not enrolled yet: the error names both places and the fix.
	cmd, out := cli("run", "--config", conf)
	if err := exit(out, start(cmd), time.Minute); err == nil {
		t.Fatalf("run without a certificate succeeded:\n%s", out)
	}
	want := "no certificate for broker.example.net: looked in " +
		enrollDir + "/certs/broker.example.net.pem (where choria-broker enroll keeps it) and " +
		puppetDir + "/certs/broker.example.net.pem (Puppet's ssldir); " +
		"get one from the Puppet CA with `choria-broker enroll --config " + conf + "`"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("run without a certificate:\n%s\nwant %s", out, want)
	}

	cmd, out = cli("enroll", "--config", conf, "--wait", "2m")
	done := start(cmd)
	await(out, done, "puppetserver ca sign --certname broker.example.net", 2*time.Minute)
	if s := out.String(); !strings.Contains(s, "(ECDSA P-256 key, also named localhost, 127.0.0.1)") || strings.Contains(s, "(names") {
		t.Fatalf("request not described by its names:\n%s", s)
	}
	ca.Sign(t, "broker.example.net")
	if err := exit(out, done, 2*time.Minute); err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}
	cert := filepath.Join(enrollDir, "certs", "broker.example.net.pem")
	if s := out.String(); !strings.Contains(s, "choria-broker run --config "+conf+" uses "+cert) || strings.Contains(s, "plugin.choria.ssldir =") {
		t.Fatalf("enroll did not say run uses its certificate as configured:\n%s", s)
	}
	if after, err := os.ReadFile(conf); err != nil || string(after) != string(before) {
		t.Fatalf("configuration changed: %v", err)
	}

	cmd, out = cli("run", "--config", conf)
	done = start(cmd)
	await(out, done, "broker ready", time.Minute)
	if !strings.Contains(out.String(), "certificate="+cert) {
		t.Fatalf("broker ready, but not on %s:\n%s", cert, out)
	}
	enrolled, err := pki.ReadCertificates(cert)
	if err != nil {
		t.Fatal(err)
	}
	cas, err := pki.ReadCertificates(ca.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pki.LoadKeyPair(ca.CertPath("rip.mcollective"), ca.KeyPath("rip.mcollective"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	nc, err := nats.Connect(fmt.Sprintf("tls://127.0.0.1:%d", port), nats.Timeout(10*time.Second),
		nats.Secure(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*kp.TLS()}, ServerName: "localhost", MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("client refused: %v\n%s", err, out)
	}
	state, err := nc.TLSConnectionState()
	nc.Close()
	if err != nil {
		t.Fatal(err)
	}
	served := state.PeerCertificates[0]
	if _, ok := served.PublicKey.(*ecdsa.PublicKey); !ok || !served.Equal(enrolled[0]) {
		t.Fatalf("broker served %s (%T), not the enrolled certificate", served.Subject, served.PublicKey)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := exit(out, done, 30*time.Second); err != nil {
		t.Fatalf("run exit: %v\n%s", err, out)
	}
}
