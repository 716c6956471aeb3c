package broker

import (
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// TestECCCurves: with ecc_curves = X25519 the client port negotiates
// X25519 and refuses a client that offers only P-256.
func TestECCCurves(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Security.ECCCurves = []string{"X25519"}
	b, _ := startBroker(t, cfg)
	node := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		tc := clientTLS(p.ca.Cert, node)
		tc.MaxVersion = version
		nc := mustConnect(t, b.ClientURL(), tc)
		cs, err := nc.TLSConnectionState()
		if err != nil {
			t.Fatal(err)
		}
		if cs.CurveID != tls.X25519 {
			t.Errorf("TLS %x: negotiated %s, want X25519", version, cs.CurveID)
		}
		nc.Close()

		tc = clientTLS(p.ca.Cert, node)
		tc.MaxVersion = version
		tc.CurvePreferences = []tls.CurveID{tls.CurveP256}
		if nc, err := connect(b.ClientURL(), tc); err == nil {
			nc.Close()
			t.Errorf("TLS %x: a client offering only P-256 was admitted", version)
		}
	}
}

// TestCipherSuites: restricted to one TLS 1.2 suite, the client port
// refuses a TLS 1.2 client offering another and admits one offering it.
// TLS 1.3 suites are not configurable in Go and stay on.
func TestCipherSuites(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t) // EC certificates: ECDSA suites
	cfg := p.config()
	cfg.Security.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}
	b, _ := startBroker(t, cfg)
	node := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})

	tls12 := func(suite uint16) *tls.Config {
		tc := clientTLS(p.ca.Cert, node)
		tc.MaxVersion = tls.VersionTLS12
		tc.CipherSuites = []uint16{suite}
		return tc
	}
	if nc, err := connect(b.ClientURL(), tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)); err == nil {
		nc.Close()
		t.Error("a TLS 1.2 client offering only another suite was admitted")
	}
	nc := mustConnect(t, b.ClientURL(), tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384))
	cs, err := nc.TLSConnectionState()
	if err != nil {
		t.Fatal(err)
	}
	if cs.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("negotiated %s", tls.CipherSuiteName(cs.CipherSuite))
	}
	// Unrestricted by default: the same client is admitted.
	b2, _ := startBroker(t, p.config())
	mustConnect(t, b2.ClientURL(), tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256))
}

// TestTLSPreferencesOnRoutes: the cluster port and the route dialler use
// the same suites and curves; members so restricted still form routes,
// and the cluster port refuses a peer offering only other curves.
func TestTLSPreferencesOnRoutes(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	ports := []int{testutil.FreePort(t), testutil.FreePort(t)}
	peers := []string{"127.0.0.1:" + strconv.Itoa(ports[0]), "127.0.0.1:" + strconv.Itoa(ports[1])}
	var bs []*Broker
	var logs []*syncBuffer
	for i := range ports {
		cfg := p.member(t, i+1, peers, ports[i])
		cfg.Security.ECCCurves = []string{"X25519"}
		cfg.Security.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}
		b, l := startBroker(t, cfg)
		bs, logs = append(bs, b), append(logs, l)
	}
	waitRoutes(t, bs, 1, logs)

	// Dialling: the config the engine solicits routes with.
	rc := bs[0].opts.Cluster.TLSConfig
	if len(rc.CurvePreferences) != 1 || rc.CurvePreferences[0] != tls.X25519 || len(rc.CipherSuites) != 1 {
		t.Fatalf("route dialler: curves %v suites %v", rc.CurvePreferences, rc.CipherSuites)
	}

	// Listening: a peer offering only P-256 fails the handshake; X25519 passes it.
	peer := p.issue(t, pki.IssueOptions{Name: "broker3.example.net", IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	handshake := func(curve tls.CurveID) error {
		conn, err := net.DialTimeout("tcp", bs[0].ClusterAddr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		// Routes start TLS at once, before INFO.
		tc := clientTLS(p.ca.Cert, peer)
		tc.CurvePreferences = []tls.CurveID{curve}
		return tls.Client(conn, tc).Handshake()
	}
	if err := handshake(tls.CurveP256); err == nil {
		t.Error("cluster port completed a handshake on P-256 with ecc_curves = X25519")
	}
	if err := handshake(tls.X25519); err != nil {
		t.Errorf("X25519 handshake with a peer certificate: %v", err)
	}
}
