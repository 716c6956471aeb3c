// Package devbroker starts a development broker for tests: the dev CA and
// configuration of `choria-broker dev`, on free loopback ports.
package devbroker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/broker"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// Broker is a running development broker.
type Broker struct {
	Env    *devenv.Env
	Config *config.Config
	*broker.Broker
	stop    func()
	stopped chan struct{}
}

// Prepare makes a development environment in a temporary directory with a
// free client port, without starting anything.
func Prepare(t testing.TB) *devenv.Env {
	t.Helper()
	env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: testutil.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// Start runs a broker on env until Stop or the end of the test.
func Start(t testing.TB, env *devenv.Env) *Broker {
	t.Helper()
	cfg, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StatsPort = 0
	return StartConfig(t, env, cfg)
}

// StartConfig runs a broker with cfg until Stop or the end of the test.
func StartConfig(t testing.TB, env *devenv.Env, cfg *config.Config) *Broker {
	t.Helper()
	b, err := broker.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	db := &Broker{Env: env, Config: cfg, Broker: b, stopped: make(chan struct{})}
	go func() {
		done <- b.Run(ctx)
		close(db.stopped)
	}()
	stopped := false
	db.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("broker: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("broker did not stop within 20s")
		}
	}
	t.Cleanup(db.stop)
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatalf("broker did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("broker not ready within 20s")
	}
	return db
}

// Stopped is closed when the broker has stopped, after a lame duck say.
func (b *Broker) Stopped() <-chan struct{} { return b.stopped }

// Stop stops the broker and waits for it.
func (b *Broker) Stop() { b.stop() }

// URL is the broker's client URL.
func (b *Broker) URL() string { return b.ClientURL() }

// KeyPair loads a certificate of the development ssldir.
func KeyPair(t testing.TB, env *devenv.Env, name string) *pki.KeyPair {
	t.Helper()
	kp, err := pki.LoadKeyPair(env.PKI.CertFile(name), env.PKI.KeyFile(name))
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// TLS is a client TLS configuration for a certificate of the ssldir.
func TLS(t testing.TB, env *devenv.Env, name string) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(env.PKI.CA.Cert)
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*KeyPair(t, env, name).TLS()}, MinVersion: tls.VersionTLS12}
}

// ClusterConfigs are the configurations of an n-member loopback cluster on
// env's CA: each member has its own certificate (broker<i>.example.net,
// with localhost and 127.0.0.1), client and cluster ports, and the same
// peers list; it advertises 127.0.0.1 to clients.
func ClusterConfigs(t testing.TB, env *devenv.Env, n int) []*config.Config {
	t.Helper()
	base, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	peerPorts := make([]int, n)
	var peers []string
	for i := range peerPorts {
		peerPorts[i] = testutil.FreePort(t)
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", peerPorts[i]))
	}
	dir := t.TempDir()
	var out []*config.Config
	for i := range n {
		cfg := brokerConfig(t, env, base, dir, fmt.Sprintf("broker%d.example.net", i+1))
		cfg.Network.Peers = peers
		cfg.Network.PeerPort = peerPorts[i]
		cfg.Network.PeerUser, cfg.Network.PeerPassword = "routes", "secret"
		out = append(out, cfg)
	}
	return out
}

// brokerConfig is base for a broker called name: its own certificate on
// env's CA (with localhost and 127.0.0.1), a free client port it
// advertises on 127.0.0.1, monitoring off.
func brokerConfig(t testing.TB, env *devenv.Env, base *config.Config, dir, name string) *config.Config {
	t.Helper()
	kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := kp.Save(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	cfg := base.Clone()
	cfg.Identity = name
	cfg.Security.Provider = "file"
	cfg.Security.FileCertificate, cfg.Security.FileKey = certFile, keyFile
	cfg.Security.FileCA, cfg.Security.FileCRL = env.PKI.CAFile(), env.PKI.CRLFile()
	cfg.Network.ClientPort = testutil.FreePort(t)
	cfg.Network.PublicURL = fmt.Sprintf("127.0.0.1:%d", cfg.Network.ClientPort)
	cfg.StatsPort = 0
	return cfg
}

// LeafConfigs are a hub and a leaf broker on env's CA: the hub,
// hub.example.net, with a leafnode port that admits leaf\d+.example.net,
// and leaf1.example.net dialling it (remote "hub"), each on its own
// client port.
func LeafConfigs(t testing.TB, env *devenv.Env) (hub, leaf *config.Config) {
	t.Helper()
	base, err := config.Load(env.BrokerConf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hub = brokerConfig(t, env, base, dir, "hub.example.net")
	hub.Network.LeafnodePort = testutil.FreePort(t)
	hub.Network.LeafnodeBrokers = []string{`^leaf\d+\.example\.net$`}
	leaf = brokerConfig(t, env, base, dir, "leaf1.example.net")
	leaf.Network.LeafnodeRemotes = []string{"hub"}
	leaf.Raw[config.LeafRemotePrefix+"hub.url"] = fmt.Sprintf("127.0.0.1:%d", hub.Network.LeafnodePort)
	return hub, leaf
}

// WaitLeafLinks waits until every broker has want leafnode links.
func WaitLeafLinks(t testing.TB, bs []*Broker, want int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for _, b := range bs {
		for len(b.Leafnodes().Links) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s has %d leafnode links, want %d", b.Config.Identity, len(b.Leafnodes().Links), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// WaitRoutes waits until every broker has want routes.
func WaitRoutes(t testing.TB, bs []*Broker, want int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for _, b := range bs {
		for b.Routes() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s has %d routes, want %d", b.Config.Identity, b.Routes(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// IssueTLS makes a new certificate on env's CA, for a role the development
// ssldir has no certificate for (a privileged user, say), and returns a
// client TLS configuration with it.
func IssueTLS(t testing.TB, env *devenv.Env, name string) *tls.Config {
	t.Helper()
	kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: name, KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(env.PKI.CA.Cert)
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*kp.TLS()}, MinVersion: tls.VersionTLS12}
}
