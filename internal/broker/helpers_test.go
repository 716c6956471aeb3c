package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// syncBuffer is a log sink tests can read while the broker writes.
type syncBuffer struct{ testutil.Buffer }

// lines returns the log lines containing every one of words.
func (s *syncBuffer) lines(words ...string) []string {
	var out []string
	for _, l := range strings.Split(s.String(), "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(l, w)
		}
		if ok && l != "" {
			out = append(out, l)
		}
	}
	return out
}

// testPKI is a CA with a broker certificate written as files.
type testPKI struct {
	dir    string
	ca     *pki.CA
	broker *pki.KeyPair
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("Test CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: t.TempDir(), ca: ca}
	p.broker = p.issue(t, pki.IssueOptions{Name: "broker.example.net", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	p.write(t, "broker.pem", pki.CertsPEM(p.broker.Chain...))
	p.writeKey(t, "broker.key", p.broker)
	p.write(t, "ca.pem", pki.CertsPEM(ca.Cert))
	p.writeCRL(t)
	return p
}

func (p *testPKI) path(name string) string { return filepath.Join(p.dir, name) }

func (p *testPKI) issue(t testing.TB, o pki.IssueOptions) *pki.KeyPair {
	t.Helper()
	if o.KeyType == "" {
		o.KeyType = "ec" // fast to make; the broker treats all key types alike
	}
	kp, err := p.ca.Issue(o)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func (p *testPKI) write(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := pki.WriteFile(p.path(name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (p *testPKI) writeKey(t testing.TB, name string, kp *pki.KeyPair) {
	t.Helper()
	b, err := pki.KeyPEM(kp.Key)
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, name, b)
}

func (p *testPKI) writeCRL(t testing.TB) {
	t.Helper()
	now := time.Now()
	crl, err := p.ca.CRLChainPEM(now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, "crl.pem", crl)
}

// baseConfig is a broker config on free loopback ports, without security settings.
func baseConfig() *config.Config {
	cfg := config.Default()
	cfg.Identity = "broker.example.net"
	cfg.BrokerNetwork = true
	cfg.UseSRV = false // no DNS in tests
	cfg.Network.ListenAddress = "127.0.0.1"
	cfg.Network.ClientPort = 0 // any free port
	cfg.StatsPort = 0          // monitoring off unless a test wants it
	return cfg
}

// config is a file-provider broker config on free loopback ports.
func (p *testPKI) config() *config.Config {
	cfg := baseConfig()
	cfg.Security.Provider = "file"
	cfg.Security.FileCertificate = p.path("broker.pem")
	cfg.Security.FileKey = p.path("broker.key")
	cfg.Security.FileCA = p.path("ca.pem")
	cfg.Security.FileCRL = p.path("crl.pem")
	return cfg
}

// startBroker runs a broker until the test ends and returns it with its
// log; each of opts changes the broker before it runs.
func startBroker(t testing.TB, cfg *config.Config, opts ...func(*Broker)) (*Broker, *syncBuffer) {
	t.Helper()
	return startBrokerDNS(t, cfg, net.DefaultResolver, opts...)
}

// startBrokerDNS is startBroker with the resolver that looks up SRV peers.
func startBrokerDNS(t testing.TB, cfg *config.Config, resolver *net.Resolver, opts ...func(*Broker)) (*Broker, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := newBroker(cfg, log, resolver)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// done closes when Run returns, so both the start and the cleanup can
	// see it; runErr is set before.
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = b.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil && isClosed(b.Ready()) { // a failed start was reported already
				t.Errorf("broker stopped with: %v", runErr)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("broker did not stop within 15s")
		}
	})
	select {
	case <-b.Ready():
	case <-done:
		t.Fatalf("broker did not start: %v\n%s", runErr, logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("broker not ready within 15s\n%s", logs)
	}
	return b, logs
}

// clientTLS is what a Choria node or client presents: its certificate, and
// the CA to check the broker with.
func clientTLS(ca *x509.Certificate, kp *pki.KeyPair) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	c := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if kp != nil {
		c.Certificates = []tls.Certificate{*kp.TLS()}
	}
	return c
}

// connect opens a nats.go connection that does not retry.
func connect(url string, tc *tls.Config, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Secure(tc), nats.Timeout(3 * time.Second), nats.NoReconnect(), nats.Name("test")}, opts...)
	return nats.Connect(url, opts...)
}

func mustConnect(t testing.TB, url string, tc *tls.Config) *nats.Conn {
	t.Helper()
	nc, err := connect(url, tc)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// roundTrip proves a connection can subscribe and receive its own publish.
func roundTrip(t testing.TB, pub, sub *nats.Conn, subject string) {
	t.Helper()
	s, err := sub.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(subject, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m, err := s.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no message on %s: %v", subject, err)
	}
	if string(m.Data) != "hello" {
		t.Fatalf("got %q", m.Data)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pemCRL(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// attr renders key=value as slog's text handler writes it, quoting included.
func attr(key, value string) string {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
				return slog.Attr{}
			}
			return a
		},
	})).Info("", key, value)
	return strings.TrimSpace(b.String())
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// stockServer runs nats-server with conf until the test ends; its log is
// in log.
func stockServer(t *testing.T, p *testPKI, name, conf string) (log string) {
	t.Helper()
	natsServer := testutil.RequireProgram(t, "nats-server")
	p.write(t, name+".conf", []byte(conf))
	log = p.path(name + ".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command(natsServer, "-c", p.path(name+".conf"))
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	return log
}

// stockCert writes a certificate for a stock nats-server.
func (p *testPKI) stockCert(t *testing.T, name string) (cert, key string) {
	kp := p.issue(t, pki.IssueOptions{Name: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, KeyType: "rsa"})
	p.write(t, name+".pem", pki.CertsPEM(kp.Chain...))
	p.writeKey(t, name+".key", kp)
	return p.path(name + ".pem"), p.path(name + ".key")
}
