package federation

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	fedURL  = "nats://fed.example.net:4222"
	collURL = "nats://coll.example.net:4222"
)

func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawData is the data field exactly as it appears on the wire.
func rawData(t testing.TB, payload []byte) json.RawMessage {
	t.Helper()
	var m struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	return m.Data
}

// TestGoldenRewrites replays the wire capture of a federated ping: each
// message as it enters the broker and as it must leave, hops included,
// with the signed data byte for byte the same.
func TestGoldenRewrites(t *testing.T) {
	t.Parallel()
	reqHop := hop{in: fedURL, via: via("broker.example.net", requests.transformer, 1, 3, 0), out: collURL}
	repHop := hop{in: collURL, via: via("broker.example.net", replies.transformer, 0, 2, 1), out: fedURL}
	cases := []struct {
		name    string
		dir     direction
		hop     hop
		targets []string
	}{
		{"request-broadcast", requests, reqHop, []string{"mcollective.broadcast.agent.discovery"}},
		{"request-direct", requests, reqHop, []string{"mcollective.node.node1.example.net", "mcollective.node.node2.example.net", "mcollective.node.node3.example.net"}},
		{"reply", replies, repHop, []string{"mcollective.reply.37bdf08389145a56c13096c178802d3b.6d62c1b4ad8a4d7fa9b6e3f1c2d4e5f6"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, want := golden(t, tc.name+".in.json"), golden(t, tc.name+".out.json")
			res, r := tc.dir.transform(in, "test", tc.hop)
			if r != "" || res.bad != 0 {
				t.Fatalf("dropped: %q, %d bad", r, res.bad)
			}
			if !bytes.Equal(res.payload, want) {
				t.Fatalf("rewritten transport:\n got %s\nwant %s", res.payload, want)
			}
			if !slices.Equal(res.targets, tc.targets) {
				t.Fatalf("targets %v, want %v", res.targets, tc.targets)
			}
			if a, b := rawData(t, in), rawData(t, res.payload); !bytes.Equal(a, b) {
				t.Fatal("data changed")
			}
		})
	}
	// The hop format is the one of the spec's capture.
	if got := via("broker.example.net", requests.transformer, 9, 9, 9); got != "broker.example.net (choria_nats_ingest:9, choria_request_transformer:9, choria_nats_egest:9)" {
		t.Fatalf("hop name %q", got)
	}
}

// TestFullTrip chains both rewrites as a server in between would and
// checks what the client finally gets: mc_sender and four hops only.
func TestFullTrip(t *testing.T) {
	t.Parallel()
	req, r := requests.transform(golden(t, "request-broadcast.in.json"), "test", hop{fedURL, "b (x)", collURL})
	if r != "" {
		t.Fatal(r)
	}
	var onColl map[string]any
	if err := json.Unmarshal(req.payload, &onColl); err != nil {
		t.Fatal(err)
	}
	h := onColl["headers"].(map[string]any)
	if h["reply-to"] != "choria.federation.test.collective" || h["federation"].(map[string]any)["target"] != nil {
		t.Fatalf("collective headers %v", h)
	}
	out, r := replies.transform(golden(t, "reply.in.json"), "test", hop{collURL, "b (y)", fedURL})
	if r != "" {
		t.Fatal(r)
	}
	if s := string(out.payload); strings.Contains(s, "federation") || strings.Contains(s, "reply-to") || strings.Count(s, "[\"nats://") != 4 {
		t.Fatalf("client got %s", s)
	}
}

// TestDrops covers every reason a message is refused.
func TestDrops(t *testing.T) {
	t.Parallel()
	const data = `"eyJ9"`
	wrap := func(headers string) []byte {
		return []byte(`{"protocol":"choria:transport:1","data":` + data + `,"headers":` + headers + `}`)
	}
	cases := []struct {
		name    string
		dir     direction
		payload []byte
		want    Reason
		bad     int
	}{
		{"not json", requests, []byte("PING"), MalformedJSON, 0},
		{"empty", replies, nil, MalformedJSON, 0},
		{"v2 transport", requests, []byte(`{"protocol":"io.choria.protocol.v2.transport","data":"eA==","headers":{}}`), UnknownProtocol, 0},
		{"no data", requests, []byte(`{"protocol":"choria:transport:1","headers":{"federation":{"req":"x","target":["a.b"]}}}`), SchemaViolation, 0},
		{"unfederated request", requests, wrap(`{"reply-to":"a.reply.x","mc_sender":"vm"}`), NotFederated, 0},
		{"unfederated reply", replies, wrap(`{"mc_sender":"node1"}`), NotFederated, 0},
		{"federation without req", requests, wrap(`{"reply-to":"r","federation":{"target":["a.b"]}}`), NotFederated, 0},
		{"null federation", replies, wrap(`{"federation":null}`), NotFederated, 0},
		{"request without targets", requests, wrap(`{"reply-to":"r","federation":{"req":"x"}}`), NoTargets, 0},
		{"request with empty targets", requests, wrap(`{"reply-to":"r","federation":{"req":"x","target":[]}}`), NoTargets, 0},
		{"request without reply-to", requests, wrap(`{"federation":{"req":"x","target":["a.b"]}}`), NoReplyTo, 0},
		{"reply without federation reply-to", replies, wrap(`{"federation":{"req":"x"}}`), NoReplyTo, 0},
		{"reply to a wildcard", replies, wrap(`{"federation":{"req":"x","reply-to":"a.>"}}`), "", 1},
		{"only bad targets", requests, wrap(`{"reply-to":"a.reply.h.x","federation":{"req":"x","target":["a b","",".a","a..b","a.*.c","a\r\nPUB x 1"]}}`), "", 6},
		{"some bad targets", requests, wrap(`{"reply-to":"a.reply.h.x","federation":{"req":"x","target":["a.node.n1","a.>","a.node.n2"]}}`), "", 1},
		{"huge target", requests, wrap(`{"reply-to":"a.reply.h.x","federation":{"req":"x","target":["` + strings.Repeat("a", maxSubject+1) + `"]}}`), "", 1},
		// A stolen node certificate may publish on choria.federation.<c>.collective:
		// a "reply" naming a request subject would replay a client's request.
		{"reply to a broadcast", replies, wrap(`{"federation":{"req":"x","reply-to":"mcollective.broadcast.agent.rpcutil"}}`), Misdirected, 0},
		{"reply to a node", replies, wrap(`{"federation":{"req":"x","reply-to":"mcollective.node.n1"}}`), Misdirected, 0},
		{"reply to a federation subject", replies, wrap(`{"federation":{"req":"x","reply-to":"choria.federation.b.federation"}}`), Misdirected, 0},
		{"request to a reply subject", requests, wrap(`{"reply-to":"a.reply.h.x","federation":{"req":"x","target":["a.node.n1","a.reply.h.y"]}}`), Misdirected, 0},
		{"request to a federation subject", requests, wrap(`{"reply-to":"a.reply.h.x","federation":{"req":"x","target":["choria.federation.b.federation"]}}`), Misdirected, 0},
		{"request whose reply-to is a broadcast", requests, wrap(`{"reply-to":"mcollective.broadcast.agent.rpcutil","federation":{"req":"x","target":["a.node.n1"]}}`), Misdirected, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, r := tc.dir.transform(tc.payload, "test", hop{})
			if r != tc.want || res.bad != tc.bad {
				t.Fatalf("reason %q bad %d, want %q %d", r, res.bad, tc.want, tc.bad)
			}
			if r != "" && res.payload != nil {
				t.Fatal("a dropped message has a payload")
			}
			if res.bad > 0 && len(res.targets) == 0 && res.payload != nil {
				t.Fatal("nothing to publish, yet a payload")
			}
			for _, s := range res.targets {
				if !publishable(s) {
					t.Fatalf("unpublishable target %q kept", s)
				}
			}
		})
	}
}

func TestPublishable(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"mcollective.node.node1.example.net", "a", "mcollective.reply.37bdf08389145a56c13096c178802d3b.6d62", "a.b-c_d.*x", "x>.y"} {
		if !publishable(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", ".", "a.", ".a", "a..b", "a.*", ">", "a b", "a\tb", "a\x00b", "a\x7fb"} {
		if publishable(s) {
			t.Errorf("%q accepted", s)
		}
	}
}
