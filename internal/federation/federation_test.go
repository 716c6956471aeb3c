package federation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/protocol"
	"github.com/choria-broker/choria-broker/internal/protocol/filter"
	"github.com/choria-broker/choria-broker/internal/testutil/devbroker"
)

// TestFederatedPing is a federation of two collectives: a federated
// client reaches every node of both, or of one, and RPC reaches each node
// directly in chunks of 200 targets.
func TestFederatedPing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a", "b")
	fa, fb := w.federate("a", nil), w.federate("b", nil)
	na, nb := w.emulate("a", 230), w.emulate("b", 120)

	// What travels on each network, to check the hops against the capture.
	onA, err := w.spy("a").SubscribeSync("mcollective.broadcast.agent.discovery")
	must(t, err)
	fedSpy := w.spy("fed")
	toClient, err := fedSpy.SubscribeSync("mcollective.reply.>")
	must(t, err)
	must(t, fedSpy.Flush())

	res := w.ping([]string{"a", "b"}, func(o *fleet.PingOptions) { o.Expect = 350 })
	expectNames(t, res, na, nb)

	m, err := onA.NextMsg(5 * time.Second)
	must(t, err)
	tr, err := protocol.ParseTransport(m.Data)
	must(t, err)
	replyTo := protocol.ReplySubject("mcollective", protocol.CallerID(w.envs["fed"].PKI.Client), res.RequestID)
	hopName := regexp.MustCompile(`^` + regexp.QuoteMeta(fedCertname) + ` \(choria_nats_ingest:[01], choria_request_transformer:\d+, choria_nats_egest:[01]\)$`)
	h := tr.Headers
	if h.ReplyTo != "choria.federation.a.collective" || h.Federation == nil || h.Federation.RequestID != res.RequestID || h.Federation.ReplyTo != replyTo || len(h.Federation.Target) != 0 {
		t.Fatalf("request on the collective: %+v %+v", h, h.Federation)
	}
	if len(h.SeenBy) != 2 || h.SeenBy[1][0] != w.url("fed") || !hopName.MatchString(h.SeenBy[1][1]) || h.SeenBy[1][2] != w.url("a") {
		t.Fatalf("request hops %q", h.SeenBy)
	}
	for i := 0; i < 350; i++ {
		m, err := toClient.NextMsg(5 * time.Second)
		must(t, err)
		tr, err := protocol.ParseTransport(m.Data)
		must(t, err)
		h := tr.Headers
		coll := "a"
		if strings.HasPrefix(h.Sender, "b-") {
			coll = "b"
		}
		last := h.SeenBy[len(h.SeenBy)-1]
		if m.Subject != replyTo || h.Federation != nil || h.ReplyTo != "" || len(h.SeenBy) != 4 || last[0] != w.url(coll) || last[2] != w.url("fed") ||
			!strings.Contains(last[1], "choria_reply_transformer:") || h.SeenBy[2][1] != h.Sender {
			t.Fatalf("reply to the client: %s %+v", m.Subject, h)
		}
	}

	// Choria's metrics count one request in and out, and every reply.
	for _, c := range []struct {
		in         *instance
		name, side string
		metric     string
		want       float64
	}{
		{fa, ingestName, federationSide, "choria_federation_received_msgs", 1},
		{fa, requests.transformer, unconnected, "choria_federation_received_msgs", 1},
		{fa, egestName, collectiveSide, "choria_federation_published_msgs", 1},
		{fa, ingestName, collectiveSide, "choria_federation_received_msgs", 230},
		{fa, replies.transformer, unconnected, "choria_federation_received_msgs", 230},
		{fa, egestName, federationSide, "choria_federation_published_msgs", 230},
		{fb, egestName, federationSide, "choria_federation_published_msgs", 120},
		{fb, egestName, federationSide, "choria_federation_time", 120},
	} {
		if got := sum(t, c.in.reg, c.metric, map[string]string{"name": c.name, "connected_to": c.side, "cluster": c.in.cluster, "identity": c.in.identity}); got != c.want {
			t.Errorf("%s{name=%s,connected_to=%s,cluster=%s} = %v, want %v", c.metric, c.name, c.side, c.in.cluster, got, c.want)
		}
	}
	if got := sum(t, fa.reg, "choria_federation_errors", nil) + sum(t, fa.reg, "choria_federation_dropped_msgs", nil); got != 0 {
		t.Errorf("errors and drops: %v", got)
	}

	t.Run("one federation", func(t *testing.T) {
		res := w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Timeout = 2 * time.Second })
		expectNames(t, res, na)
	})

	t.Run("rpc", func(t *testing.T) {
		res := w.ping([]string{"a", "b"}, func(o *fleet.PingOptions) { o.Expect = 350; o.RPC = true })
		expectNames(t, res, na, nb)
		if len(res.RPCMissing) != 0 {
			t.Fatalf("no rpcutil reply from %d nodes: %v", len(res.RPCMissing), res.RPCMissing[:min(10, len(res.RPCMissing))])
		}
		for _, r := range res.Responses {
			if r.StatusCode == nil || *r.StatusCode != 0 || r.StatusMsg != "OK" {
				t.Fatalf("rpcutil ping from %s: %v %q", r.Name, r.StatusCode, r.StatusMsg)
			}
		}
		// Three pings so far, then 350 targets in two chunks sent to both
		// clusters: each broker publishes every target, only its own
		// nodes answer.
		if got := sum(t, fa.reg, "choria_federation_published_msgs", map[string]string{"connected_to": collectiveSide}); got != 3+350 {
			t.Errorf("a published %v requests, want %d", got, 3+350)
		}
		if got := sum(t, fa.reg, "choria_federation_received_msgs", map[string]string{"name": requests.transformer}); got != 3+2 {
			t.Errorf("a transformed %v requests, want 5", got)
		}
	})
}

// TestHighAvailability runs two instances for one collective and kills
// one while pings run: every ping still gets every node.
func TestHighAvailability(t *testing.T) {
	t.Parallel()
	for _, crash := range []bool{false, true} {
		name := "graceful stop"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, "a")
			first, second := w.federate("a", nil), w.federate("a", nil)
			nodes := w.emulate("a", 200)
			first.crash = crash

			var wg sync.WaitGroup
			wg.Add(1)
			killed := make(chan struct{})
			go func() {
				defer wg.Done()
				time.Sleep(300 * time.Millisecond)
				first.stop()
				close(killed)
			}()
			type outcome struct {
				res       *fleet.PingResult
				afterKill bool
			}
			var results []outcome
			for after := 0; after < 5; {
				if len(results) > 1000 {
					t.Fatal("the kill never finished")
				}
				var done bool
				select {
				case <-killed:
					done = true
					after++
				default:
				}
				res := w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Expect = 200; o.Timeout = 5 * time.Second })
				results = append(results, outcome{res, done})
			}
			wg.Wait()
			short := 0
			for i, o := range results {
				if crash && !o.afterKill && len(o.res.Responses) < 200 && short < 2 {
					// A killed process loses what it held: a ping in flight may miss nodes.
					short++
					t.Logf("ping %d during the crash: %d replies", i, len(o.res.Responses))
					continue
				}
				expectNames(t, o.res, nodes)
			}
			t.Logf("%d pings, %d short", len(results), short)
			if got := sum(t, second.reg, "choria_federation_received_msgs", map[string]string{"name": replies.transformer}); got == 0 {
				t.Fatal("the surviving instance relayed nothing")
			}
			expectNames(t, w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Expect = 200 }), nodes)
		})
	}
}

// TestDropsAreCounted publishes what must be refused on both sides: each
// is counted by reason, nothing leaks through, and the broker carries on.
func TestDropsAreCounted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a")
	fa := w.federate("a", nil)
	nodes := w.emulate("a", 5)
	fedSpy, collSpy := w.spy("fed"), w.spy("a")
	leak, err := collSpy.SubscribeSync("leak.>")
	must(t, err)
	fedLeak, err := fedSpy.SubscribeSync("leak.>")
	must(t, err)

	data := `"eyJwcm90b2NvbCI6ImNob3JpYTpzZWN1cmU6cmVxdWVzdDoxIn0="`
	wrap := func(headers string) []byte {
		return []byte(`{"protocol":"choria:transport:1","data":` + data + `,"headers":` + headers + `}`)
	}
	for _, c := range []struct {
		on      string // network
		payload []byte
		dir     direction
		reason  Reason
		n       float64
	}{
		{"fed", []byte("not json"), requests, MalformedJSON, 1},
		{"fed", []byte(`{"protocol":"choria:transport:2","data":"eA==","headers":{}}`), requests, UnknownProtocol, 1},
		{"fed", wrap(`{"reply-to":"leak.r"}`), requests, NotFederated, 1},
		{"fed", wrap(`{"reply-to":"leak.r","federation":{"req":"x"}}`), requests, NoTargets, 1},
		{"fed", wrap(`{"federation":{"req":"x","target":["leak.t"]}}`), requests, NoReplyTo, 1},
		{"fed", wrap(`{"reply-to":"leak.reply.h.r","federation":{"req":"x","target":["leak.>","leak *"]}}`), requests, BadSubject, 2},
		{"fed", wrap(`{"reply-to":"leak.reply.h.r","federation":{"req":"x","target":["leak.t"]}}`), requests, Misdirected, 1},
		{"a", []byte(`{"protocol":"choria:transport:1"`), replies, MalformedJSON, 1},
		{"a", wrap(`{"mc_sender":"n","reply-to":"leak.r"}`), replies, NotFederated, 1},
		{"a", wrap(`{"mc_sender":"n","federation":{"req":"x"}}`), replies, NoReplyTo, 1},
		{"a", wrap(`{"mc_sender":"n","federation":{"req":"x","reply-to":"leak.*"}}`), replies, BadSubject, 1},
		{"a", wrap(`{"mc_sender":"n","federation":{"req":"x","reply-to":"leak.broadcast.agent.rpcutil"}}`), replies, Misdirected, 1},
	} {
		spy, subject := fedSpy, protocol.FederationSubject("a")
		if c.on == "a" {
			spy, subject = collSpy, protocol.FederationCollectiveSubject("a")
		}
		must(t, spy.Publish(subject, c.payload))
		want := map[string]string{"direction": c.dir.name, "reason": string(c.reason)}
		waitUntil(t, 10*time.Second, func() bool { return sum(t, fa.reg, "choria_federation_dropped_msgs", want) == c.n }, string(c.reason)+" counted")
	}
	// Parse failures count as ingest errors, as in go-choria.
	if got := sum(t, fa.reg, "choria_federation_errors", map[string]string{"name": ingestName}); got != 5 {
		t.Errorf("ingest errors %v, want 5", got)
	}
	expectNames(t, w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Expect = 5 }), nodes)
	if m, err := leak.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("leaked onto the collective: %s %s", m.Subject, m.Data)
	}
	if m, err := fedLeak.NextMsg(10 * time.Millisecond); err == nil {
		t.Fatalf("leaked onto the federation: %s %s", m.Subject, m.Data)
	}
}

// TestBoundedQueue: when the queue is full, ingest drops and counts.
func TestBoundedQueue(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a")
	fa := w.federate("a", func(tu *tuning) { tu.queueBytes = 64 }) // smaller than any request
	res := w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Timeout = 300 * time.Millisecond })
	if len(res.Responses) != 0 {
		t.Fatalf("%d replies through a full queue", len(res.Responses))
	}
	waitUntil(t, 5*time.Second, func() bool {
		return sum(t, fa.reg, "choria_federation_dropped_msgs", map[string]string{"reason": string(QueueFull)}) == 1
	}, "queue_full counted")
}

// TestReconnects restarts each network under a running federation broker:
// it reconnects by itself, keeps its subscriptions, and pings work again.
// While the collective is down, requests are dropped and counted.
func TestReconnects(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a")
	fa := w.federate("a", nil)
	nodes := w.emulate("a", 50)
	expectNames(t, w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Expect = 50 }), nodes)

	for _, network := range []string{"a", "fed"} {
		before := sum(t, fa.reg, "choria_connector_reconnections", nil)
		w.brokers[network].Stop()
		if network == "a" {
			// Requests still arrive; they cannot go out, and memory stays bounded.
			for i := 0; i < 20; i++ {
				w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Timeout = 10 * time.Millisecond })
			}
			waitUntil(t, 10*time.Second, func() bool {
				return sum(t, fa.reg, "choria_federation_dropped_msgs", map[string]string{"reason": string(PublishFailed)}) > 0
			}, "publish failures counted")
		}
		w.brokers[network] = devbroker.Start(t, w.envs[network])
		waitUntil(t, 60*time.Second, func() bool {
			return sum(t, fa.reg, "choria_connector_reconnections", nil) >= before+float64(fa.tune.conns)
		}, network+": federation broker reconnected")
		waitUntil(t, 60*time.Second, func() bool { return nodes.Stats().Connected == 50 }, "nodes reconnected")
		// Subscriptions are back once a ping makes the round trip.
		var res *fleet.PingResult
		waitUntil(t, 30*time.Second, func() bool {
			res = w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Expect = 50; o.Timeout = 2 * time.Second })
			return len(res.Responses) == 50
		}, network+": every node answering")
		expectNames(t, res, nodes)
	}
	for _, p := range fa.paths {
		if n := p.bytes.Load(); n != 0 {
			t.Fatalf("%s: %d bytes still queued", p.dir.name, n)
		}
	}
}

// TestRunStopsCleanly: Run returns when its context ends and leaves no
// goroutine behind. Not parallel, so that only this test's goroutines run.
func TestRunStopsCleanly(t *testing.T) {
	w := newWorld(t, "a")
	nodes := w.emulate("a", 3)
	// Warm up the ping client's own one-time goroutines.
	w.ping(nil, func(o *fleet.PingOptions) { o.Timeout = 10 * time.Millisecond })
	before := goleak.IgnoreCurrent()
	fa := w.federate("a", nil)
	expectNames(t, w.ping([]string{"a"}, func(o *fleet.PingOptions) { o.Expect = 3 }), nodes)
	start := time.Now()
	fa.stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s", d)
	}
	if err := fa.Run(t.Context()); err == nil {
		t.Error("a second Run did not fail")
	}
	goleak.VerifyNone(t, before)
}

// TestFederatedClientConfig: a Choria client.conf with
// plugin.choria.federation.collectives and federation_middleware_hosts
// makes ping federated with no flags, on the federation network only
// (its plugin.choria.middleware_hosts names a broker that does not exist).
func TestFederatedClientConfig(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "alpha", "beta")
	w.federate("alpha", nil)
	w.federate("beta", nil)
	na, nb := w.emulate("alpha", 20), w.emulate("beta", 30)

	base, err := os.ReadFile(w.envs["fed"].ClientConf)
	must(t, err)
	conf := filepath.Join(t.TempDir(), "client.conf")
	must(t, os.WriteFile(conf, []byte(string(base)+fmt.Sprintf(`
plugin.choria.middleware_hosts = nats://collective.invalid:4222
plugin.choria.federation.collectives = alpha, beta
plugin.choria.federation_middleware_hosts = %s
`, w.url("fed"))), 0o600))
	c := w.credentials(conf, false)
	if len(c.Federations) != 2 || len(c.Servers) != 1 || c.Servers[0] != w.url("fed") {
		t.Fatalf("federations %v servers %v; want alpha,beta through %s", c.Federations, c.Servers, w.url("fed"))
	}
	o := fleet.PingOptions{Timeout: 20 * time.Second, Expect: 50}
	c.ApplyTo(&o)
	res, err := fleet.Ping(context.Background(), o)
	must(t, err)
	expectNames(t, res, na, nb)

}

// TestReplayThroughFederationRefused is the attack of a stolen node
// certificate: it publishes a client's signed request on
// choria.federation.<cluster>.collective (nodes may, to send federated
// replies) naming a broadcast subject as the "reply" destination. The
// federation broker must not deliver it: no node on the federation
// network receives it, and it is counted as misdirected.
func TestReplayThroughFederationRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a")
	fa := w.federate("a", nil)
	victims := w.emulate("fed", 5)

	signer, err := protocol.NewSigner(w.client.Cert, "")
	must(t, err)
	f := filter.New()
	f.Agent = []string{"rpcutil"}
	tr, req, err := signer.NewRequest(protocol.RequestSpec{Agent: "rpcutil", Collective: "mcollective", Payload: []byte(`{"agent":"rpcutil","action":"ping","data":{}}`), Filter: f})
	must(t, err)
	tr.Headers.Federation = &protocol.FederationHeaders{RequestID: req.Envelope.RequestID, ReplyTo: "mcollective.broadcast.agent.rpcutil"}
	data, err := tr.Marshal()
	must(t, err)

	attacker, err := nats.Connect(w.url("a"), nats.Secure(fleet.TLSConfig(w.server.NodeCerts[0], w.client.CA)), nats.NoReconnect())
	must(t, err)
	defer attacker.Close()
	before := victims.Stats().Received
	must(t, attacker.Publish(protocol.FederationCollectiveSubject("a"), data))
	must(t, attacker.Flush())
	want := map[string]string{"direction": replies.name, "reason": string(Misdirected)}
	waitUntil(t, 10*time.Second, func() bool { return sum(t, fa.reg, "choria_federation_dropped_msgs", want) == 1 }, "the replay counted as misdirected")
	// A delivered replay would reach the nodes within milliseconds.
	time.Sleep(500 * time.Millisecond)
	if got := victims.Stats().Received; got != before {
		t.Fatalf("the nodes on the federation network received %d requests from the replay", got-before)
	}
}
