package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// roleConn is a connection whose permission errors arrive on a channel.
type roleConn struct {
	*nats.Conn
	errs chan error
}

func connectRole(t *testing.T, b *Broker, p *testPKI, kp *pki.KeyPair) *roleConn {
	t.Helper()
	rc := &roleConn{errs: make(chan error, 16)}
	nc, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, kp), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case rc.errs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("%s refused: %v", kp.Leaf().Subject.CommonName, err)
	}
	t.Cleanup(nc.Close)
	rc.Conn = nc
	return rc
}

// outcome waits for the message (allowed) or a permissions error (refused).
func outcome(t *testing.T, sub *nats.Subscription, rc *roleConn, publish func()) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		publish()
		if _, err := sub.NextMsg(100 * time.Millisecond); err == nil {
			return true
		}
		select {
		case err := <-rc.errs:
			if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation") {
				return false
			}
			t.Fatalf("unexpected error %v", err)
		default:
		}
	}
	t.Fatal("neither the message nor a permissions error within 5s")
	return false
}

// replySubject is certname's reply subject prefix in collective mcollective.
func replySubject(certname string) string {
	return strings.TrimSuffix(strings.Replace(authz.ReplyPrefixes(certname)[0], "*", "mcollective", 1), ".>")
}

// TestRolesMatrix checks every role against every action with real
// nats.go connections: allowed where Choria's model allows it, refused
// by the engine otherwise, each refusal logged and counted.
func TestRolesMatrix(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.FederationBrokers = []string{`^fed\d*\.example\.net$`}
	// Every refusal of the matrix is looked for in the log.
	b, logs := startBroker(t, cfg, withLogLimit(logLimit{Burst: 1000, Every: time.Millisecond, Period: time.Minute}))
	observer := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "observer.privileged.mcollective"}))

	certs := map[authz.Role]*pki.KeyPair{
		authz.Client:     p.issue(t, pki.IssueOptions{Name: "rip.mcollective"}),
		authz.Privileged: p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"}),
		authz.Federation: p.issue(t, pki.IssueOptions{Name: "fed1.example.net"}),
		authz.Node:       p.issue(t, pki.IssueOptions{Name: "node1.example.net"}),
	}
	type action struct {
		name    string
		pub     bool // publish, else subscribe
		subject func(own string) string
		allowed map[authz.Role]bool
	}
	all := func(rs ...authz.Role) map[authz.Role]bool {
		m := map[authz.Role]bool{authz.Privileged: true}
		for _, r := range rs {
			m[r] = true
		}
		return m
	}
	actions := []action{
		{"publish request", true, func(string) string { return "mcollective.broadcast.agent.rpcutil" }, all(authz.Client, authz.Federation)},
		{"publish directed request", true, func(string) string { return "mcollective.node.node9.example.net" }, all(authz.Client, authz.Federation)},
		{"publish reply", true, func(string) string { return replySubject("someone.mcollective") + ".0123" }, all(authz.Node, authz.Federation)},
		{"subscribe own replies", false, func(own string) string { return replySubject(own) + ".>" }, all(authz.Client, authz.Node)},
		{"subscribe others' replies", false, func(string) string { return replySubject("other.mcollective") + ".>" }, all()},
		{"subscribe all replies", false, func(string) string { return "mcollective.reply.>" }, all()},
		{"subscribe broadcasts", false, func(string) string { return "mcollective.broadcast.agent.rpcutil" }, all(authz.Node)},
		{"subscribe own direct requests", false, func(own string) string { return "mcollective.node." + own }, all(authz.Node)},
		// Reading another node's requests would let a node replay a
		// client's signed request elsewhere within its TTL.
		{"subscribe other nodes' direct requests", false, func(string) string { return "mcollective.node.node2.example.net" }, all()},
		{"subscribe every direct request", false, func(string) string { return "mcollective.node.>" }, all()},
		{"publish registration", true, func(string) string { return "mcollective.broadcast.agent.registration" }, all(authz.Node, authz.Client, authz.Federation)},
		{"publish federation request", true, func(string) string { return "choria.federation.a.federation" }, all(authz.Client)},
		{"subscribe federation requests", false, func(string) string { return "choria.federation.a.federation" }, all(authz.Federation)},
		{"publish federation reply", true, func(string) string { return "choria.federation.a.collective" }, all(authz.Node)},
		{"subscribe federation replies", false, func(string) string { return "choria.federation.a.collective" }, all(authz.Federation)},
		{"publish lifecycle event", true, func(string) string { return "choria.lifecycle.event.startup.server" }, all(authz.Node)},
	}
	for role, kp := range certs {
		rc := connectRole(t, b, p, kp)
		own := kp.Leaf().Subject.CommonName
		for _, a := range actions {
			t.Run(fmt.Sprintf("%s/%s", role, a.name), func(t *testing.T) {
				subject := a.subject(own)
				var got bool
				if a.pub {
					sub, err := observer.SubscribeSync(subject)
					if err != nil {
						t.Fatal(err)
					}
					defer sub.Unsubscribe()
					observer.Flush()
					got = outcome(t, sub, rc, func() { rc.Publish(strings.TrimSuffix(subject, ".>")+"", []byte("x")); rc.Flush() })
				} else {
					sub, err := rc.SubscribeSync(subject)
					if err != nil {
						t.Fatal(err)
					}
					defer sub.Unsubscribe()
					rc.Flush()
					target := strings.Replace(subject, ">", "x", 1)
					got = outcome(t, sub, rc, func() { observer.Publish(target, []byte("x")); observer.Flush() })
				}
				if got != a.allowed[role] {
					t.Fatalf("%s may %s %s: %v, want %v", role, a.name, subject, got, a.allowed[role])
				}
				if !got && len(logs.lines("subject refused", attr("subject", subject), attr("certificate", own))) == 0 {
					t.Fatalf("refusal not logged\n%s", logs)
				}
			})
		}
	}
	if b.Violations("publish") == 0 || b.Violations("subscribe") == 0 {
		t.Fatalf("violations not counted: publish %d subscribe %d", b.Violations("publish"), b.Violations("subscribe"))
	}
	byRole := b.ConnectionsByRole()
	for _, r := range []authz.Role{authz.Client, authz.Node, authz.Federation} {
		if byRole[r] != 1 {
			t.Fatalf("connections by role %v", byRole)
		}
	}
}

// TestViolationLoggedOnce checks repeated refusals of one subject on one
// connection log one line but count every time.
func TestViolationLoggedOnce(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, logs := startBroker(t, p.config())
	rc := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "node1.example.net"}))
	for i := 0; i < 5; i++ {
		rc.Publish("mcollective.broadcast.agent.rpcutil", []byte("x"))
	}
	rc.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for b.Violations("publish") < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("counted %d violations, want 5", b.Violations("publish"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(logs.lines("subject refused", "mcollective.broadcast.agent.rpcutil")); n != 1 {
		t.Fatalf("logged %d times, want once\n%s", n, logs)
	}
	if !rc.IsConnected() {
		t.Fatal("a violation closed the connection")
	}
}

func TestClientHostsAndDenyNodes(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.ClientHosts = []string{"10.0.0.0/8"} // loopback is not in it
	cfg.Network.DenyServerConnections = true
	b, logs := startBroker(t, cfg)
	// A client certificate from outside client_hosts is no client; with
	// node connections denied it is refused.
	if _, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, p.issue(t, pki.IssueOptions{Name: "rip.mcollective"}))); err == nil {
		t.Fatal("client certificate from outside client_hosts admitted")
	}
	if _, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, p.issue(t, pki.IssueOptions{Name: "node1.example.net"}))); err == nil {
		t.Fatal("node admitted with deny_server_connections")
	}
	if len(logs.lines("deny_server_connections")) < 2 {
		t.Fatalf("refusals not logged\n%s", logs)
	}
	priv := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"}))
	if _, err := priv.RTT(); err != nil {
		t.Fatal(err)
	}

	cfg = p.config()
	cfg.Network.ClientHosts = []string{"127.0.0.1"}
	b, _ = startBroker(t, cfg)
	rc := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "rip.mcollective"}))
	sub, _ := rc.SubscribeSync(replySubject("rip.mcollective") + ".>")
	rc.Flush()
	if b.ConnectionsByRole()[authz.Client] != 1 {
		t.Fatalf("client from an allowed address is not a client: %v", b.ConnectionsByRole())
	}
	sub.Unsubscribe()
}

func TestRolesOff(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.Roles = false
	b, logs := startBroker(t, cfg)
	if len(logs.lines("ROLES ARE OFF")) != 1 {
		t.Fatalf("no warning\n%s", logs)
	}
	rc := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "node1.example.net"}))
	// A node publishing a request: refused with roles on.
	roundTrip(t, rc.Conn, rc.Conn, "mcollective.broadcast.agent.rpcutil")
}

// TestSilentTCPFlood opens 2 000 TCP connections that never start TLS:
// all are closed within tls_timeout + 1 s, a real client still connects
// and gets answers meanwhile, and no descriptor or goroutine is left.
func TestSilentTCPFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("2 000 connections")
	}
	p := newTestPKI(t)
	cfg := p.config()
	b, _ := startBroker(t, cfg)
	fdsBefore := openFDs(t)
	const n = 2000
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", b.ClientAddr().String(), 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	opened := time.Now()
	// Meanwhile a real client gets in and is answered.
	rc := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "admin.privileged.mcollective"}))
	if _, err := rc.RTT(); err != nil {
		t.Fatalf("real client during the flood: %v", err)
	}
	limit := cfg.Network.TLSTimeout + time.Second
	var wg sync.WaitGroup
	var mu sync.Mutex
	var late []time.Duration
	for _, c := range conns {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			defer c.Close()
			c.SetReadDeadline(opened.Add(limit + 5*time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					if d := time.Since(opened); d > limit {
						mu.Lock()
						late = append(late, d)
						mu.Unlock()
					}
					return
				}
			}
		}(c)
	}
	wg.Wait()
	if len(late) > 0 {
		t.Fatalf("%d connections open longer than tls_timeout + 1s (%s), e.g. %s", len(late), limit, late[0])
	}
	rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for openFDs(t) > fdsBefore {
		if time.Now().After(deadline) {
			t.Fatalf("descriptors: %d before, %d after", fdsBefore, openFDs(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}
