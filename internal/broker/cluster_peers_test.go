package broker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// embeddedRoute runs a bare engine with a cluster listener on clusterPort
// (0: any), routes to routes and the given TLS: a stock peer, or a rogue
// one built from a stolen certificate.
func embeddedRoute(t *testing.T, name string, tc *tls.Config, clusterPort int, advertise string, routes ...string) *server.Server {
	t.Helper()
	if clusterPort == 0 {
		clusterPort = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: name, Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		Cluster: server.ClusterOpts{Name: "CHORIA", Host: "127.0.0.1", Port: clusterPort, Advertise: advertise,
			TLSConfig: tc, TLSTimeout: 2, PoolSize: -1},
	}
	for _, r := range routes {
		u, err := url.Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		opts.Routes = append(opts.Routes, u)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("%s not ready", name)
	}
	return s
}

// stockRouteTLS is what a stock nats-server does with a cluster tls {}
// block and verify: any certificate from the CA, in both directions.
func stockRouteTLS(ca *x509.Certificate, kp *pki.KeyPair) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*kp.TLS()},
		RootCAs: pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
}

// waitLog waits for a log line with every word, failing with why after a bound.
func waitLog(t *testing.T, logs *syncBuffer, why func() string, words ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(logs.lines(words...)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q; %s\n%s", words, why(), logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// neverArrives publishes on pub for a while and fails if sub gets it.
func neverArrives(t *testing.T, pub, sub *nats.Conn, subject string) {
	t.Helper()
	s, err := sub.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	sub.Flush()
	for range 10 {
		pub.Publish(subject, []byte("injected"))
		pub.Flush()
		if m, err := s.NextMsg(100 * time.Millisecond); err == nil {
			t.Fatalf("%q on %s crossed from the rogue route", m.Data, subject)
		}
	}
}

// TestClusterRefusesRouteFromNodeCertificate: a node's certificate is
// CA-signed, but a bare engine presenting it, with the routes password,
// must not become a route of a cluster whose peers it does not name, nor
// inject messages into it.
func TestClusterRefusesRouteFromNodeCertificate(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	bs, logs := startCluster(t, p, 2)
	node := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})
	rogue := embeddedRoute(t, "rogue", stockRouteTLS(p.ca.Cert, node), 0, "",
		fmt.Sprintf("nats://routes:Vrph54FBcIvdM@127.0.0.1:%d", bs[0].cfg.Network.PeerPort))

	waitLog(t, logs[0], func() string { return fmt.Sprintf("routes %v, rogue has %d", bs[0].routeNames(), rogue.NumRoutes()) },
		"cluster peer refused", attr("reason", string(pki.NotPeer)), "node1.example.net")
	rz, err := bs[0].srv.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	if rz.NumRoutes != 1 || bs[1].Routes() != 1 || rogue.NumRoutes() != 0 {
		t.Fatalf("routes: ours %d (%v) and %d, rogue %d; want 1, 1, 0", rz.NumRoutes, bs[0].routeNames(), bs[1].Routes(), rogue.NumRoutes())
	}

	client := p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"})
	onOurs := mustConnect(t, bs[1].ClientURL(), clientTLS(p.ca.Cert, client))
	onRogue, err := nats.Connect(rogue.ClientURL(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer onRogue.Close()
	neverArrives(t, onRogue, onOurs, "mcollective.broadcast.agent.rpcutil")
	neverArrives(t, onOurs, onRogue, "mcollective.node.node3.example.net")
}

// TestClusterRefusesGossipedRoute: a stock member that accepts any
// CA-signed certificate gossips a rogue engine to us; we must not dial it
// into the cluster either.
func TestClusterRefusesGossipedRoute(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	ourPort, stockPort := testutil.FreePort(t), testutil.FreePort(t)
	peers := []string{fmt.Sprintf("127.0.0.1:%d", ourPort), fmt.Sprintf("127.0.0.1:%d", stockPort)}
	cfg := p.member(t, 1, peers, ourPort)
	cfg.Network.PeerUser, cfg.Network.PeerPassword = "", ""
	ours, logs := startBroker(t, cfg)

	stockKP := p.issue(t, pki.IssueOptions{Name: "stock.example.net", IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	stock := embeddedRoute(t, "stock", stockRouteTLS(p.ca.Cert, stockKP), stockPort, "")
	waitRoutes(t, []*Broker{ours}, 1, []*syncBuffer{logs})

	// The rogue advertises a name its stolen certificate covers, so Go's
	// host name check alone would let us dial it.
	node := p.issue(t, pki.IssueOptions{Name: "node1.example.net", DNSNames: []string{"localhost"}})
	roguePort := testutil.FreePort(t)
	rogue := embeddedRoute(t, "rogue", stockRouteTLS(p.ca.Cert, node), roguePort, fmt.Sprintf("localhost:%d", roguePort),
		fmt.Sprintf("nats://127.0.0.1:%d", stockPort))

	why := func() string {
		return fmt.Sprintf("ours %v, stock %d routes, rogue %d", ours.routeNames(), stock.NumRoutes(), rogue.NumRoutes())
	}
	deadline := time.Now().Add(15 * time.Second)
	for stock.NumRoutes() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the rogue did not join the stock member: %s", why())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Our dial to the gossiped address is refused, not only its dial to us.
	waitLog(t, logs, why, "cluster peer refused", attr("peer", "localhost"), attr("reason", string(pki.NotPeer)), "node1.example.net")
	if names := ours.routeNames(); len(names) != 1 || names[0] != "stock" {
		t.Fatalf("routes %v, want only stock", names)
	}
}

// TestClusterBrokersPattern: a peer whose certificate does not name its
// peers entry (here an address) is a route once its name matches
// plugin.choria.network.cluster_brokers, and only then.
func TestClusterBrokersPattern(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	kp := p.issue(t, pki.IssueOptions{Name: "nats9.dc2.example.net"})
	for _, tc := range []struct {
		patterns []string
		routes   int
	}{
		{nil, 0},
		{[]string{`^nats\d+\.dc2\.example\.net$`}, 1},
	} {
		t.Run(fmt.Sprint(tc.patterns), func(t *testing.T) {
			t.Parallel()
			ourPort, otherPort := testutil.FreePort(t), testutil.FreePort(t)
			cfg := p.member(t, 1, []string{fmt.Sprintf("127.0.0.1:%d", ourPort), fmt.Sprintf("127.0.0.1:%d", otherPort)}, ourPort)
			cfg.Network.ClusterBrokers = tc.patterns
			ours, logs := startBroker(t, cfg)
			other := embeddedRoute(t, "nats9", stockRouteTLS(p.ca.Cert, kp), 0, "",
				fmt.Sprintf("nats://routes:Vrph54FBcIvdM@127.0.0.1:%d", ourPort))
			why := func() string { return fmt.Sprintf("ours %v, other %d", ours.routeNames(), other.NumRoutes()) }
			if tc.routes == 0 {
				waitLog(t, logs, why, "cluster peer refused", attr("reason", string(pki.NotPeer)), "nats9.dc2.example.net")
			} else {
				waitRoutes(t, []*Broker{ours}, 1, []*syncBuffer{logs})
			}
			if ours.Routes() != tc.routes {
				t.Fatalf("routes %s, want %d", why(), tc.routes)
			}
		})
	}
}
