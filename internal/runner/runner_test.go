package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// federationConfig makes cfg a federation broker for collective "a" whose
// two networks are both at url.
func federationConfig(cfg *config.Config, url string) {
	cfg.BrokerFederation = true
	cfg.Federation.Cluster = "a"
	cfg.Federation.MiddlewareHosts = []string{url}
	cfg.MiddlewareHosts = []string{url}
	cfg.UseSRV = false
}

// run starts r until the test ends, waits for its federation broker, and
// returns a function that stops it and reports how Run ended.
func run(t *testing.T, r *Runner) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	var runErr error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("runner did not stop within 30s")
			}
		}
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	deadline := time.After(30 * time.Second)
	ready := []<-chan struct{}{r.Federation.Ready()}
	if r.Network != nil {
		ready = append(ready, r.Network.Ready())
	}
	for _, ch := range ready {
		select {
		case <-ch:
		case err := <-done:
			t.Fatalf("runner stopped: %v", err)
		case <-deadline:
			t.Fatal("runner not ready within 30s")
		}
	}
	// Monitoring listens from its own goroutine.
	for r.MonitorAddr() == nil {
		select {
		case err := <-done:
			t.Fatalf("runner stopped: %v", err)
		case <-deadline:
			t.Fatal("monitoring not listening within 30s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return stop
}

// metrics scrapes the runner's monitoring port.
func metrics(t *testing.T, r *Runner) string {
	t.Helper()
	addr := r.MonitorAddr()
	if addr == nil {
		t.Fatal("no monitoring address")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/metrics", addr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s %v", resp.Status, err)
	}
	return string(body)
}

func expectMetrics(t *testing.T, text string, names ...string) {
	t.Helper()
	for _, n := range names {
		if !strings.Contains(text, "\n# TYPE "+n+" ") {
			t.Errorf("/metrics has no %s", n)
		}
	}
}

// TestFederationBrokerAlone: a configuration with only the federation
// broker serves monitoring on a listener of its own, reloads, and stops
// cleanly when its context ends.
func TestFederationBrokerAlone(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	netCfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	netCfg.StatsPort = 0
	netCfg.Network.FederationBrokers = []string{`^fed1\.example\.net$`}
	network := devbroker.StartConfig(t, env, netCfg)

	kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: "fed1.example.net", KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(env.Dir, "fed1.pem"), filepath.Join(env.Dir, "fed1.key")
	if err := kp.Save(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Identity = "fed1.example.net"
	federationConfig(cfg, network.URL())
	cfg.Security.Provider = "file"
	cfg.Security.FileCertificate, cfg.Security.FileKey, cfg.Security.FileCA = certFile, keyFile, env.PKI.CAFile()
	cfg.StatsAddress, cfg.StatsPort = "127.0.0.1", testutil.FreePort(t)

	var logs testutil.Buffer
	r, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Network != nil {
		t.Fatal("a network broker was built for a federation-only configuration")
	}
	stop := run(t, r)
	if got := r.MonitorAddr().Port; got != cfg.StatsPort {
		t.Fatalf("monitoring on port %d, want %d", got, cfg.StatsPort)
	}
	expectMetrics(t, metrics(t, r), "choria_federation_certificate_expiry_seconds", "choria_connector_initial_connection_attempts", "choria_build_info")
	r.Reload() // SIGHUP: the federation broker rereads its pair
	if !strings.Contains(logs.String(), "certificate reloaded") {
		t.Fatalf("no reload logged:\n%s", logs.String())
	}
	fed := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if n := strings.Count(l, "component=federation"); n > 1 {
			t.Errorf("component named %d times: %s", n, l)
		} else {
			fed += n
		}
	}
	if fed == 0 {
		t.Errorf("no line names the federation component:\n%s", logs.String())
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestNetworkAndFederation: one process runs the network broker and a
// federation broker that uses it for both its networks, with one
// certificate and both parts' metrics on the one monitoring port.
func TestNetworkAndFederation(t *testing.T) {
	t.Parallel()
	env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: testutil.FreePort(t), StatsPort: testutil.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	federationConfig(cfg, fmt.Sprintf("nats://127.0.0.1:%d", env.ClientPort))
	cfg.Network.FederationBrokers = []string{"^" + regexp.QuoteMeta(cfg.Identity) + "$"}

	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if r.Network == nil || r.Federation == nil {
		t.Fatalf("network %v, federation %v: want both", r.Network != nil, r.Federation != nil)
	}
	stop := run(t, r)
	expectMetrics(t, metrics(t, r), "choria_network_connections", "choria_federation_certificate_expiry_seconds", "choria_broker_certificate_expiry_seconds")
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
