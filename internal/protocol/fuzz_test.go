package protocol

import (
	"os"
	"path/filepath"
	"testing"
)

func seed(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseTransport(f *testing.F) {
	seed(f, "transport-request.json", "transport-federated.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseTransport(data)
		if err != nil {
			return
		}
		tr.Body()
		if _, err := tr.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzVerifySecureRequest(f *testing.F) {
	fx := newFixture(f)
	f.Add(signed(f, fx.client, RequestSpec{Agent: "discovery", Collective: "mcollective", Payload: []byte("ping"), Base64: true}, nil))
	f.Add([]byte(`{"protocol":"choria:secure:request:1","message":"{}","signature":"eA==","pubcert":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := fx.verifier.Verify(data)
		if err == nil && req == nil {
			t.Fatal("no request and no error")
		}
		if err != nil && ReasonOf(err) == "" {
			t.Fatal("error without a reason")
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	seed(f, "request.json")
	f.Add([]byte(`{"envelope":{"filter":{"fact":null}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseRequest(data)
		if err != nil {
			return
		}
		if len(req.Envelope.RequestID) != 32 || req.Envelope.TTL < MinTTL || req.Envelope.Filter == nil {
			t.Fatalf("accepted a request that breaks the schema: %+v", req.Envelope)
		}
		req.Payload()
	})
}
