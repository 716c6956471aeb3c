package broker

import (
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// TestAdmissionMatrix connects real nats.go clients with every kind of
// certificate and checks who gets in, and that each refusal is logged once
// with the peer, the subject and the reason.
func TestAdmissionMatrix(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	now := time.Now()
	foreign, err := pki.NewCA("Foreign CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	foreignKP, err := foreign.Issue(pki.IssueOptions{Name: "intruder.mcollective", KeyType: "ec"})
	if err != nil {
		t.Fatal(err)
	}
	revoked := p.issue(t, pki.IssueOptions{Name: "revoked.example.net"})
	p.ca.Revoke(revoked.Leaf())
	p.writeCRL(t)

	cases := []struct {
		name   string
		kp     *pki.KeyPair
		reason pki.Reason // "" = admitted
	}{
		{"ca signed client", p.issue(t, pki.IssueOptions{Name: "rip.mcollective"}), ""},
		{"ca signed node", p.issue(t, pki.IssueOptions{Name: "node1.example.net"}), ""},
		{"no eku at all", p.issue(t, pki.IssueOptions{Name: "legacy.example.net", NoEKU: true}), ""},
		{"rsa key", p.issue(t, pki.IssueOptions{Name: "rsa.example.net", KeyType: "rsa"}), ""},
		{"no certificate", nil, pki.NoCertificate},
		{"foreign ca", foreignKP, pki.UnknownCA},
		{"expired", p.issue(t, pki.IssueOptions{Name: "expired.example.net", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}), pki.Expired},
		{"not yet valid", p.issue(t, pki.IssueOptions{Name: "future.example.net", NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)}), pki.NotYetValid},
		{"server auth only", p.issue(t, pki.IssueOptions{Name: "server.example.net", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), pki.WrongUsage},
		{"revoked", revoked, pki.Revoked},
	}

	b, logs := startBroker(t, p.config())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := connect(b.ClientURL(), clientTLS(p.ca.Cert, tc.kp))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v\n%s", err, logs)
				}
				defer nc.Close()
				// Admitted and authorised: the engine answers a PING.
				if _, err := nc.RTT(); err != nil {
					t.Fatalf("admitted but not answering: %v", err)
				}
				return
			}
			if err == nil {
				nc.Close()
				t.Fatalf("admitted, want refused for %q", tc.reason)
			}
			want := []string{"client connection refused", attr("reason", string(tc.reason)), "remote=127.0.0.1:"}
			if tc.kp != nil {
				want = append(want, attr("subject", tc.kp.Leaf().Subject.String()))
			}
			// The refusal is logged before the client sees the alert.
			if got := logs.lines(want...); len(got) != 1 {
				t.Fatalf("want one log line with %q, got %d:\n%s", want, len(got), logs)
			}
			if n := b.Refused(tc.reason); n != 1 {
				t.Fatalf("refused counter for %q = %d, want 1", tc.reason, n)
			}
		})
	}
	// The engine's own handshake error lines are demoted, so a refusal is
	// one warning, not two.
	if got := logs.lines("level=ERROR", admissionMarker); len(got) != 0 {
		t.Fatalf("engine logged refusals again at error level:\n%s", strings.Join(got, "\n"))
	}
}

// TestAdmissionRequiresTLS checks a plaintext client cannot talk to the broker.
func TestAdmissionRequiresTLS(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, _ := startBroker(t, p.config())
	conn, err := net.DialTimeout("tcp", b.ClientAddr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(buf[:n]), `"tls_required":true`) {
		t.Fatalf("INFO does not require TLS: %s", buf[:n])
	}
	// A plaintext CONNECT is answered by closing the connection.
	conn.Write([]byte("CONNECT {}\r\nPING\r\n"))
	rest := make([]byte, 4096)
	for {
		n, err = conn.Read(rest)
		if err != nil {
			break
		}
		if strings.Contains(string(rest[:n]), "PONG") {
			t.Fatal("plaintext client got PONG")
		}
	}
}
