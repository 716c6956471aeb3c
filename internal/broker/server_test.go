package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The engine now and then leaves a stream's store goroutines (and
		// the access-time service they hold) behind after Shutdown when a
		// broker is stopped and another started on the same store at once
		// (TestStreamsKeepOperatorChanges, about one run in four). Our own
		// JetStream work ends before Shutdown; the cause is in the engine.
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
	)
}

// goChoriaConfig is a broker.conf from a go-choria deployment.
const goChoriaConfig = `identity = broker.example.net
logfile = /var/log/choria-broker.log
loglevel = info
plugin.choria.broker_network = true
plugin.choria.network.listen_address = 127.0.0.1
plugin.choria.network.client_port = 4222
plugin.choria.stats_port = 8222
plugin.choria.use_srv = false
plugin.security.provider = file
plugin.security.file.certificate = /etc/choria/ssl/broker.example.net.pem
plugin.security.file.key = /etc/choria/ssl/broker.example.net.key
plugin.security.file.ca = /etc/choria/ssl/ca.pem
`

// TestGoChoriaConfigRunsUnchanged runs go-choria's broker.conf with only
// the paths replaced, and a CA-signed nats.go client publishes and
// subscribes through it.
func TestGoChoriaConfigRunsUnchanged(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	text := strings.NewReplacer(
		"/etc/choria/ssl/broker.example.net.pem", p.path("broker.pem"),
		"/etc/choria/ssl/broker.example.net.key", p.path("broker.key"),
		"/etc/choria/ssl/ca.pem", p.path("ca.pem"),
	).Replace(goChoriaConfig)
	file := filepath.Join(t.TempDir(), "broker.conf")
	writeFile(t, file, text)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Fatalf("warnings for a go-choria config: %v", cfg.Warnings)
	}
	if cfg.Network.ClientPort != 4222 || cfg.StatsPort != 8222 || cfg.LogFile != "/var/log/choria-broker.log" || cfg.UseSRV {
		t.Fatalf("settings not read as go-choria means them: %+v", cfg)
	}
	// Tests run in parallel on one machine: free ports instead of 4222/8222.
	cfg.Network.ClientPort, cfg.StatsPort = 0, -1
	b, _ := startBroker(t, cfg)

	client := p.issue(t, pki.IssueOptions{Name: "rip.mcollective", KeyType: "rsa"})
	node := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})
	pub := mustConnect(t, b.ClientURL(), clientTLS(p.ca.Cert, client))
	sub := mustConnect(t, b.ClientURL(), clientTLS(p.ca.Cert, node))
	roundTrip(t, pub, sub, "mcollective.broadcast.agent.discovery")
	roundTrip(t, sub, pub, "mcollective.reply.37bdf08389145a56c13096c178802d3b.2607e685e8b14adeb0f3aafd6755b026")

	// Monitoring answers on localhost only, as nats-server serves it.
	mon := b.MonitorAddr()
	if mon == nil || !mon.IP.IsLoopback() {
		t.Fatalf("monitoring on %v, want loopback", mon)
	}
	var varz struct {
		ServerName  string `json:"server_name"`
		TLSRequired bool   `json:"tls_required"`
		MaxConn     int    `json:"max_connections"`
		Connections int    `json:"connections"`
	}
	getJSON(t, fmt.Sprintf("http://%s/varz", mon), &varz)
	if varz.ServerName != "broker.example.net" || !varz.TLSRequired || varz.MaxConn != 50000 || varz.Connections != 2 {
		t.Fatalf("varz = %+v", varz)
	}
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, body)
	}
}

// TestStopLeavesNothing stops a broker with clients connected and checks
// that no goroutine is left and both ports can be bound again. Not
// parallel: it counts the process's goroutines.
func TestStopLeavesNothing(t *testing.T) {
	before := goleak.IgnoreCurrent()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.StatsPort = -1
	b, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(15 * time.Second):
		t.Fatal("not ready")
	}
	client := p.issue(t, pki.IssueOptions{Name: "rip.mcollective"})
	nc, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, client))
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{b.ClientAddr().String(), b.MonitorAddr().String()}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("broker did not stop within 15s")
	}
	nc.Close()
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("port %s still held after stop: %v", a, err)
		}
		l.Close()
	}
	goleak.VerifyNone(t, before)
}

// TestStartFailsWhenPortTaken checks a taken port is an error naming it,
// not a broker that runs without a listener.
func TestStartFailsWhenPortTaken(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.ClientPort = l.Addr().(*net.TCPAddr).Port
	b, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(cfg.Network.ClientPort)) {
		t.Fatalf("want an error naming port %d, got %v", cfg.Network.ClientPort, err)
	}
}

// TestStartupChecks covers the PKI problems that stop the broker before it
// listens, each with an error naming the file and the fix.
func TestStartupChecks(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	now := time.Now()
	expired := p.issue(t, pki.IssueOptions{Name: "broker.example.net", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	future := p.issue(t, pki.IssueOptions{Name: "broker.example.net", NotBefore: now.Add(time.Hour)})
	other := p.issue(t, pki.IssueOptions{Name: "other.example.net"})
	p.write(t, "expired.pem", pki.CertsPEM(expired.Chain...))
	p.writeKey(t, "expired.key", expired)
	p.write(t, "future.pem", pki.CertsPEM(future.Chain...))
	p.writeKey(t, "future.key", future)
	p.write(t, "other.pem", pki.CertsPEM(other.Chain...))
	p.writeKey(t, "other.key", other)
	writeFile(t, p.path("garbage.pem"), "hello\n")

	cases := []struct {
		name string
		mod  func(*config.Config)
		want []string
	}{
		{"missing certificate", func(c *config.Config) { c.Security.FileCertificate = p.path("nope.pem") }, []string{"nope.pem", "no certificate for broker.example.net", "plugin.security.file.certificate"}},
		{"missing key", func(c *config.Config) { c.Security.FileKey = p.path("nope.key") }, []string{"nope.key", "does not exist"}},
		{"missing ca", func(c *config.Config) { c.Security.FileCA = p.path("nope-ca.pem") }, []string{"nope-ca.pem", "does not exist"}},
		{"garbage ca", func(c *config.Config) { c.Security.FileCA = p.path("garbage.pem") }, []string{"garbage.pem", "no PEM certificate"}},
		{"garbage crl", func(c *config.Config) { c.Security.FileCRL = p.path("garbage.pem") }, []string{"garbage.pem"}},
		{"key of another certificate", func(c *config.Config) { c.Security.FileKey = p.path("other.key") }, []string{"other.key", "does not belong", "broker.pem"}},
		{"expired", func(c *config.Config) {
			c.Security.FileCertificate, c.Security.FileKey = p.path("expired.pem"), p.path("expired.key")
		}, []string{"expired.pem", "expired on"}},
		{"not yet valid", func(c *config.Config) {
			c.Security.FileCertificate, c.Security.FileKey = p.path("future.pem"), p.path("future.key")
		}, []string{"future.pem", "not valid until"}},
		{"names do not cover identity", func(c *config.Config) {
			c.Security.FileCertificate, c.Security.FileKey = p.path("other.pem"), p.path("other.key")
		}, []string{"other.pem", `identity "broker.example.net"`}},
		{"crl of another ca", func(c *config.Config) { c.Security.FileCRL = foreignCRL(t, p) }, []string{"foreign-crl.pem", "different CAs"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := p.config()
			tc.mod(cfg)
			_, err := New(cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				t.Fatal("broker accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func foreignCRL(t testing.TB, p *testPKI) string {
	now := time.Now()
	other, err := pki.NewCA("Test CA", now.Add(-time.Hour), now.Add(time.Hour)) // same name, other key
	if err != nil {
		t.Fatal(err)
	}
	der, err := other.CRL(now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p.write(t, "foreign-crl.pem", pemCRL(der))
	return p.path("foreign-crl.pem")
}
