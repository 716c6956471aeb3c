package protocol

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/protocol/filter"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

// TestGoldenMessages checks that messages shaped like the protocol's
// captured examples parse and serialise back byte for byte.
func TestGoldenMessages(t *testing.T) {
	t.Parallel()
	when := time.Unix(1795549962, 0)
	req := &Request{Protocol: RequestV1, Message: "cGluZw==", Envelope: RequestEnvelope{
		RequestID: "2607e685e8b14adeb0f3aafd6755b026", SenderID: "vm", CallerID: "choria=rip.mcollective",
		Collective: "mcollective", Agent: "discovery", TTL: 60, Time: when.Unix(), Filter: filter.New(),
	}}
	got, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if want := golden(t, "request.json"); !bytes.Equal(got, want) {
		t.Fatalf("request:\n got %s\nwant %s", got, want)
	}
	parsed, err := ParseRequest(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(parsed.Payload()) != "ping" {
		t.Fatalf("payload %q", parsed.Payload())
	}

	secure, err := NewReply(parsed, "node1.example.net", []byte("pong"), when)
	if err != nil {
		t.Fatal(err)
	}
	sr, reply, err := ParseSecureReply(secure)
	if err != nil {
		t.Fatal(err)
	}
	if want := golden(t, "reply.json"); sr.Message != string(want) || reply.Message != "pong" {
		t.Fatalf("reply:\n got %s\nwant %s", sr.Message, want)
	}

	for _, name := range []string{"transport-request.json", "transport-federated.json"} {
		in := golden(t, name)
		tr, err := ParseTransport(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("%s does not round trip:\n got %s\nwant %s", name, out, in)
		}
	}
	if got := ReplySubject("mcollective", "choria=rip.mcollective", "2607e685e8b14adeb0f3aafd6755b026"); got != "mcollective.reply.37bdf08389145a56c13096c178802d3b.2607e685e8b14adeb0f3aafd6755b026" {
		t.Fatalf("reply subject %s", got)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := NewRequestID()
		if len(id) != 32 || strings.ToLower(id) != id || seen[id] {
			t.Fatalf("bad request id %q", id)
		}
		seen[id] = true
	}
}

// fixture is a CA with a client, a node, a privileged user and a foreign client.
type fixture struct {
	ca                          *pki.CA
	client, node, priv, foreign *pki.KeyPair
	verifier                    *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("Test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("Other CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *pki.CA, name string) *pki.KeyPair {
		kp, err := ca.Issue(pki.IssueOptions{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	f := &fixture{ca: ca, client: issue(ca, "rip.mcollective"), node: issue(ca, "node1.example.net"), priv: issue(ca, "admin.privileged.mcollective"), foreign: issue(other, "rip.mcollective")}
	allowed, _ := CompilePatterns("allowed", []string{`\.mcollective$`, `\.choria$`})
	priv, _ := CompilePatterns("privileged", []string{`\.privileged.mcollective$`, `/\.privileged.choria$/`})
	trust := pki.NewTrust([]*x509.Certificate{ca.Cert}, nil)
	f.verifier = &Verifier{Trust: func() *pki.Trust { return trust }, Allowed: allowed, Privileged: priv}
	return f
}

// signed returns the secure request body a signer makes, after mod edits the request.
func signed(t testing.TB, kp *pki.KeyPair, spec RequestSpec, mod func(*Request)) []byte {
	t.Helper()
	s, err := NewSigner(kp, "")
	if err != nil {
		t.Fatal(err)
	}
	tr, req, err := s.NewRequest(spec)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := tr.Body()
	if mod == nil {
		return body
	}
	var sr SecureRequest
	json.Unmarshal(body, &sr)
	mod(req)
	msg, _ := json.Marshal(req)
	sr.Message = string(msg)
	sr.Signature, _ = s.Sign(msg)
	out, _ := json.Marshal(&sr)
	return out
}

func TestVerifyDropsByReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ping := RequestSpec{Agent: "discovery", Collective: "mcollective", Payload: []byte("ping"), Base64: true}
	good := signed(t, f.client, ping, nil)

	tampered := bytes.Replace(good, []byte(`\"ttl\":60`), []byte(`\"ttl\":61`), 1)
	otherCaller := signed(t, f.client, ping, func(r *Request) { r.Envelope.CallerID = "choria=someone.mcollective" })
	short := signed(t, f.client, ping, func(r *Request) { r.Envelope.RequestID = r.Envelope.RequestID[:31] })
	lowTTL := signed(t, f.client, ping, func(r *Request) { r.Envelope.TTL = 29 })
	var noFilterKey []byte
	{
		var sr SecureRequest
		json.Unmarshal(good, &sr)
		sr.Message = strings.Replace(sr.Message, `"compound":[]`, `"compoundx":[]`, 1)
		noFilterKey, _ = json.Marshal(&sr)
	}
	cases := []struct {
		name string
		body []byte
		want DropReason // "" = valid
	}{
		{"valid client", good, ""},
		{"privileged with any callerid", signed(t, f.priv, ping, func(r *Request) { r.Envelope.CallerID = "choria=rip.mcollective" }), ""},
		{"bad signature", tampered, BadSignature},
		{"certificate from another CA", signed(t, f.foreign, ping, nil), UntrustedCert},
		{"node certificate as client", signed(t, f.node, ping, nil), CertnameNotAllowed},
		{"callerid not the certificate's", otherCaller, CertnameNotAllowed},
		{"31 character request id", short, InvalidRequestID},
		{"ttl below 30", lowTTL, SchemaViolation},
		{"missing filter key", noFilterKey, MissingFilterKey},
		{"malformed json", []byte(`{"protocol":`), MalformedJSON},
		{"wrong protocol", []byte(`{"protocol":"choria:secure:request:2","message":"x","signature":"x","pubcert":"x"}`), UnknownProtocol},
		{"no signature", []byte(`{"protocol":"choria:secure:request:1","message":"x","signature":"","pubcert":"x"}`), SchemaViolation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.verifier.Verify(tc.body)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if got := ReasonOf(err); err == nil || got != tc.want {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}

func TestTTLWindow(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		age  int64
		want bool
	}{{0, true}, {59, true}, {60, false}, {-59, true}, {-60, false}} {
		r := &Request{Envelope: RequestEnvelope{TTL: 60, Time: now.Unix() - tc.age}}
		if got := r.WithinTTL(now); got != tc.want {
			t.Errorf("age %d: WithinTTL = %v", tc.age, got)
		}
	}
}

func TestPayloadBase64OrRaw(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string]string{
		"cGluZw==": "ping",
		`"ping"`:   `"ping"`,
		`{"agent":"rpcutil","action":"ping","data":{}}`: `{"agent":"rpcutil","action":"ping","data":{}}`,
	} {
		if got := string((&Request{Message: msg}).Payload()); got != want {
			t.Errorf("Payload(%q) = %q", msg, got)
		}
	}
}

// TestSignaturesInteroperateWithOpenSSL checks our signatures verify with
// openssl and openssl's verify with ours.
func TestSignaturesInteroperateWithOpenSSL(t *testing.T) {
	t.Parallel()
	openssl := testutil.RequireProgram(t, "openssl")
	f := newFixture(t)
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	write := func(n string, b []byte) {
		if err := os.WriteFile(path(n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewSigner(f.client, "")
	if err != nil {
		t.Fatal(err)
	}
	msg := golden(t, "request.json")
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sig)
	key, _ := pki.KeyPEM(f.client.Key)
	write("msg", msg)
	write("sig", raw)
	write("cert.pem", pki.CertsPEM(f.client.Leaf()))
	write("key.pem", key)
	run := func(args ...string) []byte {
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return out
	}
	run("x509", "-in", path("cert.pem"), "-pubkey", "-noout", "-out", path("pub.pem"))
	if out := run("dgst", "-sha256", "-verify", path("pub.pem"), "-signature", path("sig"), path("msg")); !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl did not verify our signature: %s", out)
	}
	run("dgst", "-sha256", "-sign", path("key.pem"), "-out", path("osig"), path("msg"))
	osig, err := os.ReadFile(path("osig"))
	if err != nil {
		t.Fatal(err)
	}
	if err := verifySignature(f.client.Leaf(), msg, base64.StdEncoding.EncodeToString(osig)); err != nil {
		t.Fatalf("openssl's signature does not verify with ours: %v", err)
	}
	if err := verifySignature(f.client.Leaf(), append(msg, ' '), base64.StdEncoding.EncodeToString(osig)); err == nil {
		t.Fatal("signature verified over different bytes")
	}
}

// TestFederatedRequestHeaders checks the headers a federated request
// carries, exactly as §1.6 and the wire capture show.
func TestFederatedRequestHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s, _ := NewSigner(f.client, "vm")
	tr, req, err := s.NewRequest(RequestSpec{Agent: "discovery", Collective: "mcollective", Payload: []byte("ping"), Base64: true})
	if err != nil {
		t.Fatal(err)
	}
	tr.AddHop("nats://fed:4222", "vm", "nats://fed:4222")
	tr.Headers.Federation = &FederationHeaders{RequestID: req.Envelope.RequestID, Target: []string{BroadcastSubject("mcollective", "discovery")}}
	b, _ := tr.Marshal()
	var generic map[string]any
	json.Unmarshal(b, &generic)
	h := generic["headers"].(map[string]any)
	want := `{"federation":{"req":"` + req.Envelope.RequestID + `","target":["mcollective.broadcast.agent.discovery"]},"mc_sender":"vm","reply-to":"mcollective.reply.37bdf08389145a56c13096c178802d3b.` + req.Envelope.RequestID + `","seen-by":[["nats://fed:4222","vm","nats://fed:4222"]]}`
	if got, _ := json.Marshal(h); string(got) != want {
		t.Fatalf("headers\n got %s\nwant %s", got, want)
	}
	if FederationSubject("a") != "choria.federation.a.federation" || FederationCollectiveSubject("a") != "choria.federation.a.collective" {
		t.Fatal("federation subjects")
	}
}
