package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// Per-connection cost of admission, roles and our bookkeeping, against the
// engine alone configured as bench/storm configures stock nats-server
// (mutual TLS, verify, no authorization). Client and broker share the
// process, so each figure holds both sides; what is ours is the difference
// to "stock-engine".
//
//	go test ./internal/broker -run '^$' -bench 'Connect$' -benchmem
//	go test ./internal/broker -run '^$' -bench ConnectionHeap -benchtime 1x

// connSetups are the brokers compared, each started for one benchmark.
var connSetups = []struct {
	name  string
	start func(b *testing.B, p *testPKI) string // returns the client URL
}{
	{"stock-engine", startStockEngine},
	{"roles-off", func(b *testing.B, p *testPKI) string { return startQuietBroker(b, p, false) }},
	{"node", func(b *testing.B, p *testPKI) string { return startQuietBroker(b, p, true) }},
}

// BenchmarkConnect is one node connecting (TLS handshake, admission,
// CONNECT, its two subscriptions) and leaving: -benchmem gives what that
// allocates.
func BenchmarkConnect(b *testing.B) {
	for _, s := range connSetups {
		b.Run(s.name, func(b *testing.B) {
			p := newTestPKI(b)
			url := s.start(b, p)
			tc := nodeTLS(b, p)
			for b.Loop() {
				nodeConnect(b, url, tc).Close()
			}
		})
	}
}

// BenchmarkConnectionHeap holds 400 node connections and reports the heap
// each holds once connected, after two collections (sync.Pool keeps its
// contents over one).
func BenchmarkConnectionHeap(b *testing.B) {
	const conns = 400
	for _, s := range connSetups {
		b.Run(s.name, func(b *testing.B) {
			p := newTestPKI(b)
			url := s.start(b, p)
			tc := nodeTLS(b, p)
			for b.Loop() {
				base := liveHeap()
				ncs := make([]*nats.Conn, 0, conns)
				for range conns {
					ncs = append(ncs, nodeConnect(b, url, tc))
				}
				held := liveHeap() - base
				for _, nc := range ncs {
					nc.Close()
				}
				b.ReportMetric(float64(held)/conns/1024, "KiB/conn")
			}
		})
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// nodeTLS is a node's TLS: a certificate of its own name, as Puppet issues.
func nodeTLS(b *testing.B, p *testPKI) *tls.Config {
	name := "node1.example.net"
	return clientTLS(p.ca.Cert, p.issue(b, pki.IssueOptions{Name: name, DNSNames: []string{name}}))
}

// nodeConnect connects and subscribes as a go-choria server does.
func nodeConnect(b *testing.B, url string, tc *tls.Config) *nats.Conn {
	nc, err := connect(url, tc)
	if err != nil {
		b.Fatalf("connect: %v", err)
	}
	for _, sub := range []string{"mcollective.broadcast.agent.discovery", "mcollective.node.node1.example.net"} {
		if _, err := nc.Subscribe(sub, func(*nats.Msg) {}); err != nil {
			b.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	return nc
}

// startQuietBroker runs our broker until the benchmark ends, logging
// warnings only, as in production: debug lines would allocate per connect.
func startQuietBroker(b *testing.B, p *testPKI, roles bool) string {
	cfg := p.config()
	cfg.Network.Roles = roles
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	br, err := newBroker(cfg, log, net.DefaultResolver)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = br.Run(ctx)
	}()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			b.Errorf("broker did not stop within 15s")
		}
	})
	select {
	case <-br.Ready():
	case <-done:
		b.Fatal("broker did not start")
	case <-time.After(15 * time.Second):
		b.Fatal("broker not ready within 15s")
	}
	return br.ClientURL()
}

// startStockEngine runs the engine with the TLS settings bench/storm gives
// stock nats-server: the CA verifies clients, nothing else is checked.
func startStockEngine(b *testing.B, p *testPKI) string {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{*p.broker.TLS()}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		TLSVerify: true, TLSTimeout: 2,
	})
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	b.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		b.Fatal("engine did not start")
	}
	return s.ClientURL()
}
