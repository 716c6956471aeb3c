package fleet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/protocol"
	"github.com/choria-broker/choria-broker/internal/protocol/filter"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

func credentials(t testing.TB, path string, nodes bool) *Credentials {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadCredentials(cfg, nodes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startFleet runs n emulated nodes against the dev environment until the test ends.
func startFleet(t testing.TB, env *devenv.Env, n int, mod func(*EmulatorOptions)) *Emulator {
	t.Helper()
	c := credentials(t, env.ServerConf, true)
	o := c.EmulatorOptions(n)
	if mod != nil {
		mod(&o)
	}
	e, err := NewEmulator(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("emulator did not stop within 30s")
		}
	})
	waitUntil(t, 60*time.Second, func() bool { return e.Stats().Connected == n }, "all nodes connected")
	return e
}

func waitUntil(t testing.TB, limit time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(t testing.TB, env *devenv.Env, mod func(*PingOptions)) *PingResult {
	t.Helper()
	c := credentials(t, env.ClientConf, false)
	o := PingOptions{Servers: c.Servers, Cert: c.Cert, CA: c.CA, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&o)
	}
	res, err := Ping(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestPingFiltersAndRPC(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	devbroker.Start(t, env)
	e := startFleet(t, env, 40, func(o *EmulatorOptions) { o.Agents = []string{"emulated0"} })

	all := ping(t, env, func(o *PingOptions) { o.Expect = 40 })
	if got := all.Names(); len(got) != 40 || len(all.Missing(e.Identities())) != 0 {
		t.Fatalf("ping got %d: %v", len(got), got)
	}
	if s := all.Summarise(); s.Count != 40 || s.Min > s.P50 || s.P50 > s.P99 || s.P99 > s.Max {
		t.Fatalf("summary %+v", s)
	}

	cases := []struct {
		name  string
		build func(f *filter.Filter) error
		want  func(i int) bool
	}{
		{"fact country=de", func(f *filter.Filter) error { return f.AddFact("country=de") }, func(i int) bool { return i%5 == 0 }},
		{"class apache", func(f *filter.Filter) error { return f.AddClass("apache") }, func(i int) bool { return i%2 == 0 }},
		{"agent emulated0", func(f *filter.Filter) error { return f.AddAgent("emulated0") }, func(int) bool { return true }},
		{"agent missing", func(f *filter.Filter) error { return f.AddAgent("puppet") }, func(int) bool { return false }},
		{"identity regex", func(f *filter.Filter) error { return f.AddIdentity("/-1[0-9]\\./") }, func(i int) bool { return i >= 10 && i <= 19 }},
		{"compound", func(f *filter.Filter) error { return f.AddCompound("with('role::web') and fact('cpus') >= 2") }, func(i int) bool { return i%4 == 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filter.New()
			if err := tc.build(f); err != nil {
				t.Fatal(err)
			}
			res := ping(t, env, func(o *PingOptions) { o.Filter = f; o.Timeout = 2 * time.Second })
			var want []string
			for i, id := range e.Identities() {
				if tc.want(i) {
					want = append(want, id)
				}
			}
			sort.Strings(want)
			if got := res.Names(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("got %v\nwant %v", got, want)
			}
		})
	}

	rpc := ping(t, env, func(o *PingOptions) { o.Expect = 40; o.RPC = true })
	for _, r := range rpc.Responses {
		if r.StatusCode == nil || *r.StatusCode != 0 || r.StatusMsg != "OK" {
			t.Fatalf("rpcutil ping from %s: %v %q", r.Name, r.StatusCode, r.StatusMsg)
		}
	}
	if len(rpc.RPCMissing) != 0 {
		t.Fatalf("no rpcutil reply from %v", rpc.RPCMissing)
	}
}

// rawClient is a NATS connection for publishing hand-made requests.
func rawClient(t testing.TB, db *devbroker.Broker, name string) *nats.Conn {
	return rawClientTLS(t, db, devbroker.TLS(t, db.Env, name))
}

func rawClientTLS(t testing.TB, db *devbroker.Broker, tc *tls.Config) *nats.Conn {
	nc, err := nats.Connect(db.URL(), nats.Secure(tc), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestEmulatorDropsBadRequests publishes broken requests straight onto the
// broadcast subject: no node replies, and each is counted by reason.
func TestEmulatorDropsBadRequests(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	db := devbroker.Start(t, env)
	const nodes = 3
	e := startFleet(t, env, nodes, nil)
	nc := rawClient(t, db, env.PKI.Client)

	client := devbroker.KeyPair(t, env, env.PKI.Client)
	node := devbroker.KeyPair(t, env, env.PKI.Nodes[0])
	now := time.Now()
	foreignCA, _ := pki.NewCA("Foreign", now.Add(-time.Hour), now.Add(time.Hour))
	foreign, _ := foreignCA.Issue(pki.IssueOptions{Name: env.PKI.Client})

	build := func(kp *pki.KeyPair, spec protocol.RequestSpec, edit func(sr *protocol.SecureRequest)) []byte {
		s, err := protocol.NewSigner(kp, "")
		if err != nil {
			t.Fatal(err)
		}
		spec.Agent, spec.Collective, spec.Payload, spec.Base64 = "discovery", "mcollective", []byte("ping"), true
		tr, _, err := s.NewRequest(spec)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			body, _ := tr.Body()
			var sr protocol.SecureRequest
			json.Unmarshal(body, &sr)
			edit(&sr)
			b, _ := json.Marshal(&sr)
			replyTo := tr.Headers.ReplyTo
			tr = protocol.NewTransport(b, tr.Headers.Sender)
			tr.Headers.ReplyTo = replyTo
		}
		b, _ := tr.Marshal()
		return b
	}
	resign := func(sr *protocol.SecureRequest, msg string) {
		s, _ := protocol.NewSigner(client, "")
		sr.Message = msg
		sr.Signature, _ = s.Sign([]byte(msg))
	}
	cases := []struct {
		reason  protocol.DropReason
		payload []byte
	}{
		{protocol.BadSignature, build(client, protocol.RequestSpec{}, func(sr *protocol.SecureRequest) {
			sr.Message = strings.Replace(sr.Message, `"ttl":60`, `"ttl":61`, 1)
		})},
		{protocol.UntrustedCert, build(foreign, protocol.RequestSpec{}, nil)},
		{protocol.CertnameNotAllowed, build(node, protocol.RequestSpec{}, nil)},
		{protocol.TTLExpired, build(client, protocol.RequestSpec{Time: now.Add(-2 * time.Minute)}, nil)},
		{protocol.InvalidRequestID, build(client, protocol.RequestSpec{RequestID: strings.Repeat("a", 31)}, nil)},
		{protocol.MissingFilterKey, build(client, protocol.RequestSpec{}, func(sr *protocol.SecureRequest) {
			resign(sr, strings.Replace(sr.Message, `"identity":[],`, ``, 1))
		})},
		{protocol.MalformedJSON, []byte(`{"protocol":"choria:transport:1","data":`)},
	}
	// The client role may read its own replies only.
	replies, err := nc.SubscribeSync(authz.ReplyPrefixes(env.PKI.Client)[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(string(tc.reason), func(t *testing.T) {
			if err := nc.Publish("mcollective.broadcast.agent.discovery", tc.payload); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, 10*time.Second, func() bool { return e.Stats().Dropped[tc.reason] == nodes }, fmt.Sprintf("%d drops for %q", nodes, tc.reason))
		})
	}
	// A valid request on the same path is answered, so silence above meant refusal.
	if err := nc.Publish("mcollective.broadcast.agent.discovery", build(client, protocol.RequestSpec{}, nil)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < nodes; i++ {
		if _, err := replies.NextMsg(10 * time.Second); err != nil {
			t.Fatalf("valid request: reply %d: %v", i, err)
		}
	}
	if m, err := replies.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("unexpected extra reply: %s", m.Data)
	}
	if s := e.Stats(); s.Replied != nodes {
		t.Fatalf("replied %d, want %d; stats %+v", s.Replied, nodes, s)
	}
}

// TestFleetSurvivesBrokerRestart stops the broker under a connected fleet
// and starts it again on the same port: every node comes back by itself.
func TestFleetSurvivesBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restart with 300 nodes")
	}
	t.Parallel()
	const nodes = 300
	env := devbroker.Prepare(t)
	db := devbroker.Start(t, env)
	e := startFleet(t, env, nodes, nil)
	if res := ping(t, env, func(o *PingOptions) { o.Expect = nodes }); len(res.Responses) != nodes {
		t.Fatalf("before restart: %d replies", len(res.Responses))
	}
	db.Stop()
	waitUntil(t, 20*time.Second, func() bool { return e.Stats().Connected == 0 }, "all nodes disconnected")
	devbroker.Start(t, env)
	waitUntil(t, 90*time.Second, func() bool { return e.Stats().Connected == nodes }, "all nodes reconnected")
	res := ping(t, env, func(o *PingOptions) { o.Expect = nodes; o.Timeout = 10 * time.Second })
	if missing := res.Missing(e.Identities()); len(missing) != 0 {
		t.Fatalf("after restart %d nodes missing: %v", len(missing), missing[:min(10, len(missing))])
	}
	if s := e.Stats(); s.Reconnects < nodes {
		t.Fatalf("reconnects %d, want at least %d", s.Reconnects, nodes)
	}
}

// TestFederatedPingHeaders captures what ping --federations publishes.
func TestFederatedPingHeaders(t *testing.T) {
	t.Parallel()
	env := devbroker.Prepare(t)
	db := devbroker.Start(t, env)
	spy := rawClientTLS(t, db, devbroker.IssueTLS(t, env, "spy.privileged.mcollective"))
	sub, err := spy.SubscribeSync("choria.federation.>")
	if err != nil {
		t.Fatal(err)
	}
	spy.Flush()
	res := ping(t, env, func(o *PingOptions) { o.Federations = []string{"a", "b"}; o.Timeout = 200 * time.Millisecond })
	got := map[string]*protocol.Transport{}
	for i := 0; i < 2; i++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := protocol.ParseTransport(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		got[m.Subject] = tr
	}
	for _, subj := range []string{"choria.federation.a.federation", "choria.federation.b.federation"} {
		tr := got[subj]
		if tr == nil {
			t.Fatalf("nothing on %s", subj)
		}
		f := tr.Headers.Federation
		if f == nil || f.RequestID != res.RequestID || f.ReplyTo != "" || len(f.Target) != 1 || f.Target[0] != "mcollective.broadcast.agent.discovery" {
			t.Fatalf("%s federation header %+v", subj, f)
		}
		if tr.Headers.ReplyTo != protocol.ReplySubject("mcollective", "choria="+env.PKI.Client, res.RequestID) || len(tr.Headers.SeenBy) != 1 {
			t.Fatalf("%s headers %+v", subj, tr.Headers)
		}
	}
}
