package federation

import "testing"

// BenchmarkTransform is the CPU a message costs a worker, without NATS.
func BenchmarkTransform(b *testing.B) {
	for _, c := range []struct {
		name string
		dir  direction
		file string
	}{{"request", requests, "request-direct.in.json"}, {"reply", replies, "reply.in.json"}} {
		in := golden(b, c.file)
		h := hop{collURL, via("broker.example.net", c.dir.transformer, 0, 1, 1), fedURL}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, r := c.dir.transform(in, "test", h); r != "" {
					b.Fatal(r)
				}
			}
		})
	}
}
