package stats_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/runner"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// fixture is a development broker run by the runner, as `choria-broker
// run` does, with monitoring on a free loopback port.
type fixture struct {
	env  *devenv.Env
	cfg  *config.Config
	r    *runner.Runner
	base string // http://127.0.0.1:port
	stop func() // stops the runner and waits; the test's end calls it too
}

// start runs the broker; each opt may change the configuration first.
func start(t *testing.T, opts ...func(*config.Config)) *fixture {
	t.Helper()
	env := devbroker.Prepare(t)
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Network.ClientPort = 0 // free port
	cfg.StatsPort = -1         // free port, on the default stats_address
	for _, o := range opts {
		o(cfg)
	}
	return run(t, env, cfg)
}

// run runs the runner on cfg until stop or the test's end.
func run(t *testing.T, env *devenv.Env, cfg *config.Config) *fixture {
	t.Helper()
	r, err := runner.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("runner: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("runner did not stop within 20s")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-r.Network.Ready():
	case err := <-done:
		t.Fatalf("broker did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("broker not ready within 20s")
	}
	return &fixture{env: env, cfg: cfg, r: r, base: "http://" + r.MonitorAddr().String(), stop: stop}
}

// withStreams turns Choria Streams on with a store in a test directory.
func withStreams(t *testing.T) func(*config.Config) {
	return func(c *config.Config) { c.Network.Stream.Store = t.TempDir() }
}

// connect connects as a certificate of the development ssldir.
func (f *fixture) connect(t *testing.T, name string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(f.r.Network.ClientURL(), nats.Secure(devbroker.TLS(t, f.env, name)), nats.Timeout(5*time.Second), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// refuse tries the revoked certificate, which the broker must refuse.
func (f *fixture) refuse(t *testing.T) {
	t.Helper()
	nc, err := nats.Connect(f.r.Network.ClientURL(), nats.Secure(devbroker.TLS(t, f.env, f.env.PKI.Revoked)), nats.Timeout(5*time.Second), nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Fatal("the revoked certificate connected")
	}
}

// staleCRL replaces the CRL with a newer one (the broker keeps the newest)
// whose nextUpdate passes two seconds later; the broker rereads it within
// a second.
func (f *fixture) staleCRL(t *testing.T) {
	t.Helper()
	now := time.Now()
	pem, err := f.env.PKI.CA.CRLChainPEM(now, now.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(f.env.PKI.CRLFile()), "crl.pem.new")
	if err := os.WriteFile(tmp, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.env.PKI.CRLFile()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the broker to load the stale CRL", func() bool {
		ts := f.r.Network.TrustStatus()
		return !ts.CRLThisUpdate.Before(now.Truncate(time.Second)) && time.Now().After(ts.CRLNextUpdate)
	})
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

// waitFor polls cond until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}
