package stats

import (
	"fmt"
	"html/template"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	dto "github.com/prometheus/client_model/go"
)

// sample is one point of the status page's charts: counters as read, so
// rates come from the difference of two samples.
type sample struct {
	at          time.Time
	connections int
	msgs        int64  // in + out
	handshakes  uint64 // completed TLS handshakes
	fedMsgs     float64
}

// history is a fixed ring of the last hour's samples.
type history struct {
	mu   sync.Mutex
	buf  []sample
	next int
	full bool
}

func newHistory(n int) *history { return &history{buf: make([]sample, max(n, 2))} }

func (h *history) add(s sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf[h.next] = s
	h.next = (h.next + 1) % len(h.buf)
	h.full = h.full || h.next == 0
}

// all is the samples oldest first.
func (h *history) all() []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]sample(nil), h.buf[:h.next]...)
	}
	return append(append([]sample(nil), h.buf[h.next:]...), h.buf[:h.next]...)
}

// sample reads the counters the charts need: one Varz, the gate's
// atomics and the federation counters.
func (s *Stats) sample() sample {
	sm := sample{at: time.Now()}
	if b := s.o.Network; b != nil {
		if srv := b.Engine(); srv != nil {
			if v, err := srv.Varz(nil); err == nil {
				sm.connections, sm.msgs = v.Connections, v.InMsgs+v.OutMsgs
			}
		}
		sm.handshakes = b.Handshakes().Completed
	}
	in, out := s.federationTotals()
	sm.fedMsgs = in + out
	return sm
}

// federationTotals sums the federation broker's received and published
// counters over workers.
func (s *Stats) federationTotals() (received, published float64) {
	if !s.o.Federation {
		return 0, 0
	}
	mfs, err := s.o.Registry.Gather()
	if err != nil {
		return 0, 0
	}
	sum := func(mf *dto.MetricFamily) (t float64) {
		for _, m := range mf.GetMetric() {
			t += m.GetCounter().GetValue()
		}
		return t
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "choria_federation_received_msgs":
			received = sum(mf)
		case "choria_federation_published_msgs":
			published = sum(mf)
		}
	}
	return received, published
}

// updateCollectives records the collectives nodes subscribe to
// (<collective>.broadcast.agent.<agent>).
func (s *Stats) updateCollectives() {
	b := s.o.Network
	if b == nil || b.Engine() == nil {
		return
	}
	sz, err := b.Engine().Subsz(&server.SubszOptions{Subscriptions: true, Limit: 1 << 30})
	if err != nil {
		return
	}
	seen := map[string]bool{}
	var out []string
	for _, sub := range sz.Subs {
		c, rest, ok := strings.Cut(sub.Subject, ".broadcast.agent.")
		if !ok || rest == "" || strings.Contains(c, ".") || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	sortStrings(out)
	s.mu.Lock()
	s.collectives = out
	s.mu.Unlock()
}

// series is one chart's values over time.
type series struct {
	Title string
	Last  string
	SVG   template.HTML
}

// charts turns the history into connections, messages/s and handshakes/s.
func (s *Stats) charts() []series {
	h := s.hist.all()
	conns := make([]float64, 0, len(h))
	msgs := make([]float64, 0, len(h))
	hs := make([]float64, 0, len(h))
	for i, p := range h {
		conns = append(conns, float64(p.connections))
		if i == 0 {
			continue
		}
		dt := p.at.Sub(h[i-1].at).Seconds()
		if dt <= 0 {
			dt = 1
		}
		msgs = append(msgs, max(float64(p.msgs-h[i-1].msgs), 0)/dt)
		hs = append(hs, max(float64(p.handshakes)-float64(h[i-1].handshakes), 0)/dt)
	}
	return []series{
		{Title: "Connections", Last: last(conns, "%.0f"), SVG: spark(conns)},
		{Title: "Messages/s", Last: last(msgs, "%.1f"), SVG: spark(msgs)},
		{Title: "TLS handshakes/s", Last: last(hs, "%.1f"), SVG: spark(hs)},
	}
}

func last(v []float64, f string) string {
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf(f, v[len(v)-1])
}

// spark draws values as an inline SVG polyline scaled to the maximum.
func spark(v []float64) template.HTML {
	const w, h = 360.0, 60.0
	var top float64
	for _, x := range v {
		top = max(top, x)
	}
	if top == 0 {
		top = 1
	}
	var pts strings.Builder
	for i, x := range v {
		px := w
		if len(v) > 1 {
			px = float64(i) * w / float64(len(v)-1)
		}
		fmt.Fprintf(&pts, "%.1f,%.1f ", px, h-2-x/top*(h-4))
	}
	// Only numbers go into the markup, so it is safe as HTML.
	return template.HTML(fmt.Sprintf(`<svg class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img"><rect width="100%%" height="100%%" fill="#f6f8fa"/><polyline fill="none" stroke="#0969da" stroke-width="1.5" points="%s"/><text x="4" y="12" font-size="10" fill="#57606a">max %.4g</text></svg>`,
		w, h, w, h, strings.TrimSpace(pts.String()), top))
}
