package federation

import (
	"testing"

	"github.com/choria-broker/choria-broker/internal/protocol"
)

// FuzzTransform feeds anything to both rewrites: they must never panic,
// and whatever they let through must be a correct rewrite of the input
// with the data untouched.
func FuzzTransform(f *testing.F) {
	for _, n := range []string{"request-broadcast.in.json", "request-direct.in.json", "reply.in.json", "reply.out.json"} {
		f.Add(golden(f, n), true)
		f.Add(golden(f, n), false)
	}
	for _, p := range []string{
		`{"protocol":"choria:transport:1","data":"eA==","headers":{"reply-to":"r","federation":{"req":"x","target":["a.>","a.b"]}}}`,
		`{"protocol":"choria:transport:1","data":null,"headers":{}}`,
		`{"protocol":"choria:transport:1","data":"","headers":{}}`,
		`{"protocol":"choria:transport:2","data":5,"headers":{}}`,
		`{"data":"\u003c\/x","protocol":"choria:transport:1","headers":{"federation":{"req":"r","reply-to":"a"}}}`,
	} {
		f.Add([]byte(p), false)
	}
	h := hop{fedURL, via("b", "t", 0, 0, 0), collURL}
	f.Fuzz(func(t *testing.T, payload []byte, request bool) {
		d := replies
		if request {
			d = requests
		}
		res, r := d.transform(payload, "test", h)
		// The raw-data parse refuses exactly what protocol.ParseTransport does.
		if _, err := protocol.ParseTransport(payload); err != nil {
			if r != reasonOf(err) {
				t.Fatalf("reason %q, ParseTransport says %v", r, err)
			}
		} else if r == MalformedJSON || r == UnknownProtocol || r == SchemaViolation {
			t.Fatalf("refused (%s) what ParseTransport accepts", r)
		}
		if r != "" {
			if res.payload != nil || len(res.targets) != 0 {
				t.Fatalf("dropped (%s) yet something to publish", r)
			}
			return
		}
		in, err := protocol.ParseTransport(payload)
		if err != nil {
			t.Fatalf("accepted what does not parse: %v", err)
		}
		var want []string
		if request {
			want = in.Headers.Federation.Target
		} else {
			want = []string{in.Headers.Federation.ReplyTo}
		}
		if len(res.targets)+res.bad != len(want) {
			t.Fatalf("%d targets + %d bad, from %d", len(res.targets), res.bad, len(want))
		}
		for _, s := range res.targets {
			if !publishable(s) {
				t.Fatalf("target %q kept", s)
			}
		}
		if len(res.targets) == 0 {
			return
		}
		out, err := protocol.ParseTransport(res.payload)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, res.payload)
		}
		if out.Data != in.Data || out.Headers.Sender != in.Headers.Sender || len(out.Headers.SeenBy) != len(in.Headers.SeenBy)+1 || out.Headers.SeenBy[len(in.Headers.SeenBy)] != [3]string{h.in, h.via, h.out} {
			t.Fatalf("rewrite changed more than the headers:\n in %s\nout %s", payload, res.payload)
		}
		fh := out.Headers.Federation
		if request {
			if out.Headers.ReplyTo != "choria.federation.test.collective" || fh == nil || len(fh.Target) != 0 || fh.ReplyTo != in.Headers.ReplyTo || fh.RequestID != in.Headers.Federation.RequestID {
				t.Fatalf("request headers %+v %+v", out.Headers, fh)
			}
		} else if fh != nil || out.Headers.ReplyTo != in.Headers.ReplyTo {
			t.Fatalf("reply headers %+v", out.Headers)
		}
	})
}
