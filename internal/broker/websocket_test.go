package broker

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// wsConfig is p's broker config with the websocket listener on a free port.
func wsConfig(t *testing.T, p *testPKI) *config.Config {
	cfg := p.config()
	cfg.Network.WebsocketPort = testutil.FreePort(t)
	return cfg
}

// connectWS is connectRole over wss://, with compression asked for.
func connectWS(t *testing.T, b *Broker, p *testPKI, kp *pki.KeyPair, opts ...nats.Option) *roleConn {
	t.Helper()
	rc := &roleConn{errs: make(chan error, 16)}
	opts = append([]nats.Option{nats.Compression(true), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case rc.errs <- err:
		default:
		}
	})}, opts...)
	nc, err := connect(b.WebsocketURL(), clientTLS(p.ca.Cert, kp), opts...)
	if err != nil {
		t.Fatalf("%s refused over websocket: %v", kp.Leaf().Subject.CommonName, err)
	}
	t.Cleanup(nc.Close)
	rc.Conn = nc
	return rc
}

// A node certificate over websocket is still a node: it gets broadcasts
// and its own requests, and is refused another node's requests, a
// client's replies and publishing requests, each refusal logged with its
// certificate and role. A client over websocket reaches nodes on the
// client port and the reverse.
func TestWebsocketRoles(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, logs := startBroker(t, wsConfig(t, p))
	if !strings.HasPrefix(b.WebsocketURL(), "wss://127.0.0.1:") {
		t.Fatalf("websocket URL %q", b.WebsocketURL())
	}
	node := connectWS(t, b, p, p.issue(t, pki.IssueOptions{Name: "node1.example.net"}))
	client := connectWS(t, b, p, p.issue(t, pki.IssueOptions{Name: "rip.mcollective"}))
	tcpNode := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "node2.example.net"}))
	if !strings.HasPrefix(node.ConnectedUrl(), "wss://") {
		t.Fatalf("connected to %s", node.ConnectedUrl())
	}

	// Allowed: a ws client's broadcast reaches nodes on both listeners,
	// and a node's reply reaches the ws client.
	for _, n := range []*roleConn{node, tcpNode} {
		sub, err := n.SubscribeSync("mcollective.broadcast.agent.rpcutil")
		if err != nil {
			t.Fatal(err)
		}
		n.Flush()
		if !outcome(t, sub, client, func() { client.Publish("mcollective.broadcast.agent.rpcutil", []byte("x")); client.Flush() }) {
			t.Fatal("a websocket client's broadcast was refused")
		}
		sub.Unsubscribe()
	}
	reply := replySubject("rip.mcollective")
	sub, err := client.SubscribeSync(reply + ".>")
	if err != nil {
		t.Fatal(err)
	}
	client.Flush()
	if !outcome(t, sub, node, func() { node.Publish(reply+".1", []byte("x")); node.Flush() }) {
		t.Fatal("a websocket node's reply was refused")
	}

	// Refused: what a stolen node certificate must not do.
	for _, subject := range []string{"mcollective.node.node2.example.net", reply + ".>", "mcollective.reply.>"} {
		s, err := node.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		node.Flush()
		target := strings.Replace(subject, ">", "x", 1)
		if outcome(t, s, node, func() { tcpNode.Publish(target, []byte("x")); tcpNode.Flush() }) {
			t.Fatalf("a node over websocket subscribed %s", subject)
		}
		if l := logs.lines("subject refused", attr("action", "subscribe"), attr("subject", subject), attr("certificate", "node1.example.net"), attr("role", "node")); len(l) != 1 {
			t.Fatalf("refusal of %s logged %d times\n%s", subject, len(l), logs)
		}
	}
	s, err := tcpNode.SubscribeSync("mcollective.broadcast.agent.rpcutil")
	if err != nil {
		t.Fatal(err)
	}
	tcpNode.Flush()
	if outcome(t, s, node, func() { node.Publish("mcollective.broadcast.agent.rpcutil", []byte("x")); node.Flush() }) {
		t.Fatal("a node over websocket published a request")
	}

	if got := b.WebsocketByRole(); got[authz.Node] != 1 || got[authz.Client] != 1 || len(got) != 2 {
		t.Errorf("websocket connections by role %v, want a node and a client", got)
	}
	if got := b.ConnectionsByRole(); got[authz.Node] != 2 || got[authz.Client] != 1 {
		t.Errorf("connections by role %v", got)
	}
}

// Websocket admission is the client port's: no certificate, a foreign
// CA's, a revoked one are refused in the handshake, counted by reason
// and logged with the peer's address.
func TestWebsocketAdmission(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	now := time.Now()
	foreign, err := pki.NewCA("Foreign CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := foreign.Issue(pki.IssueOptions{Name: "intruder.mcollective", KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	revoked := p.issue(t, pki.IssueOptions{Name: "revoked.example.net"})
	p.ca.Revoke(revoked.Leaf())
	p.writeCRL(t)
	b, logs := startBroker(t, wsConfig(t, p))
	for _, tc := range []struct {
		name   string
		kp     *pki.KeyPair
		reason pki.Reason
	}{
		{"no certificate", nil, pki.NoCertificate},
		{"foreign CA", intruder, pki.UnknownCA},
		{"revoked", revoked, pki.Revoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Refused(tc.reason)
			if nc, err := connect(b.WebsocketURL(), clientTLS(p.ca.Cert, tc.kp)); err == nil {
				nc.Close()
				t.Fatal("admitted over websocket")
			}
			if n := b.Refused(tc.reason) - before; n != 1 {
				t.Errorf("counted %d refusals for %s, want 1", n, tc.reason)
			}
			// The engine logs the failed handshake after the client saw it.
			deadline := time.Now().Add(5 * time.Second)
			for len(logs.lines("client connection refused", "listener=websocket", attr("reason", string(tc.reason)), "remote=127.0.0.1:")) != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("refusal not logged once with the peer\n%s", logs)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	if len(b.WebsocketByRole()) != 0 {
		t.Errorf("refused connections counted as connected: %v", b.WebsocketByRole())
	}

	// An admitted certificate's plain HTTPS request is no upgrade.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(p.ca.Cert, p.issue(t, pki.IssueOptions{Name: "curl.example.net"}))}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(strings.Replace(b.WebsocketURL(), "wss://", "https://", 1) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("a plain HTTPS request got %s", resp.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(logs.lines("level=WARN", "websocket upgrade refused", "websocket handshake error")) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("refused upgrade not logged once as a warning\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l := logs.lines("level=ERROR"); len(l) != 0 {
		t.Errorf("refusals logged as errors: %q", l)
	}
}

// An established websocket connection is closed when a new CRL revokes
// its certificate, as a client port one is.
func TestWebsocketRevokedDisconnected(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := wsConfig(t, p)
	cfg.Security.CRLDisconnect = true
	b, logs := startBroker(t, cfg)
	kp := p.issue(t, pki.IssueOptions{Name: "node7.example.net"})
	closed := make(chan struct{})
	connectWS(t, b, p, kp, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	keeps := connectWS(t, b, p, p.issue(t, pki.IssueOptions{Name: "node8.example.net"}))

	p.ca.Revoke(kp.Leaf())
	p.writeCRL(t) // the broker watches the file
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("revoked websocket connection still open\n%s", logs)
	}
	// The client may see the close before the broker has counted it.
	deadline := time.Now().Add(5 * time.Second)
	for len(logs.lines("connection closed: its certificate was revoked", attr("certificate", "node7.example.net"))) != 1 || b.CRL().Disconnected != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("disconnect not logged or counted (%d)\n%s", b.CRL().Disconnected, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := keeps.RTT(); err != nil {
		t.Errorf("a valid websocket connection was closed too: %v", err)
	}
	if nc, err := connect(b.WebsocketURL(), clientTLS(p.ca.Cert, kp)); err == nil {
		nc.Close()
		t.Error("the revoked certificate reconnected over websocket")
	}
}

// Lame duck moves websocket clients off too, and admits no new ones.
func TestWebsocketLameDuck(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := wsConfig(t, p)
	cfg.Network.LameDuckDuration, cfg.Network.LameDuckGrace = time.Second, 100*time.Millisecond
	b, logs := startBroker(t, cfg)
	kp := p.issue(t, pki.IssueOptions{Name: "node1.example.net"})
	closed := make(chan struct{})
	connectWS(t, b, p, kp, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	b.LameDuck()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("websocket connection still open in lame duck\n%s", logs)
	}
	if nc, err := connect(b.WebsocketURL(), clientTLS(p.ca.Cert, kp)); err == nil {
		nc.Close()
		t.Error("a websocket client admitted in lame duck")
	}
}
