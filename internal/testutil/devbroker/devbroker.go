// Package devbroker starts a development broker for tests: the dev CA and
// configuration of `choria-broker dev`, on free loopback ports.
package devbroker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/broker"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// Broker is a running development broker.
type Broker struct {
	Env    *devenv.Env
	Config *config.Config
	*broker.Broker
	stop func()
}

// Prepare makes a development environment in a temporary directory with a
// free client port, without starting anything.
func Prepare(t testing.TB) *devenv.Env {
	t.Helper()
	env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: FreePort(t)})
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
	b, err := broker.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stopped := false
	db := &Broker{Env: env, Config: cfg, Broker: b}
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

// FreePort asks the kernel for a free loopback port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
