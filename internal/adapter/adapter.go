package adapter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/choria-broker/choria-broker/internal/protocol"
)

// OutputProtocol is the protocol field of what a choria_streams adapter
// publishes; go-choria writes the literal choria_streams for the jetstream
// alias too.
const OutputProtocol = "choria:adapters:choria_streams:output:1"

// Output is the JSON an adapter publishes for each message, go-choria's
// transformer.Msg: no NATS headers, a plain core publish.
type Output struct {
	Protocol  string    `json:"protocol"`
	Data      string    `json:"data"` // the request's or reply's body
	Sender    string    `json:"sender"`
	Time      time.Time `json:"time"` // the message's own time, UTC
	RequestID string    `json:"requestid"`
}

// Connector opens a connection to the broker, in-process in `run`.
type Connector func(name string, opts ...nats.Option) (*nats.Conn, error)

// Options configure the adapters of one process.
type Options struct {
	Specs    []Spec
	Identity string // the broker's, the identity label of the metrics
	Connect  Connector
	// Ready is closed when Connect can be called; nil when it can at once.
	Ready    <-chan struct{}
	Registry prometheus.Registerer // nil: metrics are kept but not exported
	Log      *slog.Logger
}

// Adapters runs every configured adapter.
type Adapters struct {
	opts Options
	m    *metrics
}

// New checks the options; Run starts the adapters.
func New(o Options) (*Adapters, error) {
	if o.Connect == nil {
		return nil, errors.New("adapters need a connection to the broker")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	m := newMetrics()
	if o.Registry != nil {
		if err := m.register(o.Registry); err != nil {
			return nil, err
		}
	}
	return &Adapters{opts: o, m: m}, nil
}

// Run connects every adapter's workers and moves messages until ctx ends.
// A worker that cannot connect is retried; the broker is never stopped by
// an adapter.
func (a *Adapters) Run(ctx context.Context) error {
	if len(a.opts.Specs) == 0 {
		<-ctx.Done()
		return nil
	}
	if a.opts.Ready != nil {
		select {
		case <-a.opts.Ready:
		case <-ctx.Done():
			return nil
		}
	}
	var wg sync.WaitGroup
	for _, s := range a.opts.Specs {
		r := &run{a: a, s: s, work: make(chan *Output, s.QueueLen), log: a.opts.Log.With("adapter", s.Name)}
		r.log.Info("starting adapter", "type", s.Type, "ingest", s.IngestTopic, "protocol", s.IngestProtocol, "stream", s.StreamTopic, "queue_len", s.QueueLen)
		if len(s.StreamServers) > 0 {
			r.log.Warn("stream.servers is ignored: the adapter publishes through this broker, in-process, as go-choria's adapters do beside a network broker", "setting", "plugin.choria.adapter."+s.Name+".stream.servers")
		}
		a.m.capacity.WithLabelValues(s.Name, a.opts.Identity).Set(float64(s.QueueLen))
		for i := range s.IngestWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.ingest(ctx, i)
			}()
		}
		for i := range s.StreamWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.output(ctx, i)
			}()
		}
	}
	wg.Wait()
	return nil
}

// run is one adapter at work.
type run struct {
	a    *Adapters
	s    Spec
	work chan *Output // bounded: a full queue drops, it never grows
	log  *slog.Logger
}

// connect retries until it connects or ctx ends.
func (r *run) connect(ctx context.Context, name string) *nats.Conn {
	backoff := 100 * time.Millisecond
	for {
		nc, err := r.a.opts.Connect(name, nats.MaxReconnects(-1))
		if err == nil {
			return nc
		}
		r.log.Error("adapter cannot connect to the broker; retrying", "connection", name, "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (r *run) ingest(ctx context.Context, i int) {
	id := r.a.opts.Identity
	name := r.s.Name
	var (
		recv    = r.a.m.received.WithLabelValues(name, "input", id)
		bytes   = r.a.m.bytes.WithLabelValues(name, "input", id)
		errs    = r.a.m.errors.WithLabelValues(name, "input", id)
		dropped = r.a.m.dropped.WithLabelValues(name, id)
		timer   = r.a.m.time.WithLabelValues(name, "input", id)
		qlen    = r.a.m.length.WithLabelValues(name, id)
	)
	nc := r.connect(ctx, fmt.Sprintf("choria adapter %s.%d ingest", name, i))
	if nc == nil {
		return
	}
	defer nc.Close()
	handle := func(m *nats.Msg) {
		start := time.Now()
		defer func() { timer.Observe(time.Since(start).Seconds()) }()
		bytes.Add(float64(len(m.Data)))
		out, err := decode(m.Data, r.s.IngestProtocol == "request")
		if err != nil {
			errs.Inc()
			r.log.Debug("adapter discards a message it cannot read", "subject", m.Subject, "error", err)
			return
		}
		select {
		case r.work <- out:
			recv.Inc()
		default:
			// Blocking here would make the engine drop this connection
			// as a slow consumer, and many more messages with it.
			errs.Inc()
			dropped.Inc()
		}
		qlen.Set(float64(len(r.work)))
	}
	if _, err := nc.QueueSubscribe(r.s.IngestTopic, "nats_ingest_"+name, handle); err != nil {
		r.log.Error("adapter cannot subscribe", "subject", r.s.IngestTopic, "error", err)
		return
	}
	<-ctx.Done()
}

func (r *run) output(ctx context.Context, i int) {
	id := r.a.opts.Identity
	name := r.s.Name
	var (
		pub   = r.a.m.published.WithLabelValues(name, "output", id)
		bytes = r.a.m.bytes.WithLabelValues(name, "output", id)
		errs  = r.a.m.errors.WithLabelValues(name, "output", id)
		timer = r.a.m.time.WithLabelValues(name, "output", id)
		qlen  = r.a.m.length.WithLabelValues(name, id)
	)
	nc := r.connect(ctx, fmt.Sprintf("choria adapter %s.%d stream", name, i))
	if nc == nil {
		return
	}
	defer nc.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-r.work:
			start := time.Now()
			qlen.Set(float64(len(r.work)))
			j, err := json.Marshal(o)
			if err == nil {
				bytes.Add(float64(len(j)))
				err = nc.Publish(strings.ReplaceAll(r.s.StreamTopic, "%s", o.Sender), j)
			}
			if err != nil {
				errs.Inc()
				r.log.Warn("adapter cannot publish a message; discarded", "subject", r.s.StreamTopic, "error", err)
			} else {
				pub.Inc()
			}
			timer.Observe(time.Since(start).Seconds())
		}
	}
}

// decode unwraps a transport to the request or reply inside, without
// checking signatures, as go-choria's adapters do: the broker admitted
// the sender's certificate already.
func decode(payload []byte, request bool) (*Output, error) {
	t, err := protocol.ParseTransport(payload)
	if err != nil {
		return nil, err
	}
	body, err := t.Body()
	if err != nil {
		return nil, err
	}
	var secure struct {
		Protocol string `json:"protocol"`
		Message  string `json:"message"`
	}
	if err := json.Unmarshal(body, &secure); err != nil {
		return nil, fmt.Errorf("secure message: %w", err)
	}
	want := protocol.SecureReplyV1
	if request {
		want = protocol.SecureRequestV1
	}
	if secure.Protocol != want {
		return nil, fmt.Errorf("protocol %q, want %q (plugin.choria.adapter.NAME.ingest.protocol)", secure.Protocol, want)
	}
	var inner struct {
		Message  string `json:"message"`
		Envelope struct {
			RequestID string `json:"requestid"`
			SenderID  string `json:"senderid"`
			Time      int64  `json:"time"`
		} `json:"envelope"`
	}
	if err := json.Unmarshal([]byte(secure.Message), &inner); err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	if inner.Envelope.SenderID == "" {
		return nil, errors.New("message has no senderid")
	}
	data := inner.Message
	if b, err := base64.StdEncoding.DecodeString(data); err == nil {
		data = string(b)
	}
	return &Output{Protocol: OutputProtocol, Data: data, Sender: inner.Envelope.SenderID, Time: time.Unix(inner.Envelope.Time, 0).UTC(), RequestID: inner.Envelope.RequestID}, nil
}

// metrics are go-choria's choria_adapter_*, plus a count of the messages
// a full queue dropped (go-choria counts them as errors only).
type metrics struct {
	received, published, errors, bytes *prometheus.CounterVec
	dropped                            *prometheus.CounterVec
	time                               *prometheus.SummaryVec
	length, capacity                   *prometheus.GaugeVec
}

func newMetrics() *metrics {
	labels := []string{"name", "role", "identity"}
	counter := func(name, help string, l []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, l)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"name", "identity"})
	}
	return &metrics{
		received:  counter("choria_adapter_received_msgs", "Messages adapters took from their ingest subject and queued", labels),
		published: counter("choria_adapter_published_msgs", "Messages adapters published to their stream subject", labels),
		errors:    counter("choria_adapter_errors", "Messages adapters could not read, queue or publish", labels),
		bytes:     counter("choria_adapter_bytes", "Bytes adapters read and published", labels),
		dropped:   counter("choria_adapter_queue_dropped_msgs", "Messages dropped because an adapter's work queue was full", []string{"name", "identity"}),
		time:      prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "choria_adapter_time", Help: "Time adapters took to handle a message"}, labels),
		length:    gauge("choria_adapter_queue_length", "Messages waiting in an adapter's work queue"),
		capacity:  gauge("choria_adapter_queue_capacity", "Size of an adapter's work queue (queue_len)"),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.received, m.published, m.errors, m.bytes, m.dropped, m.time, m.length, m.capacity} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("adapter metrics: %w", err)
		}
	}
	return nil
}

// Stats is what an adapter did, for tests and the status page.
type Stats struct {
	Received, Published, Errors, Dropped uint64
}

// Stats reads an adapter's counters.
func (a *Adapters) Stats(name string) Stats {
	id := a.opts.Identity
	v := func(c prometheus.Counter) uint64 {
		var m dto.Metric
		_ = c.Write(&m)
		return uint64(m.GetCounter().GetValue())
	}
	var s Stats
	for _, role := range []string{"input", "output"} {
		s.Errors += v(a.m.errors.WithLabelValues(name, role, id))
	}
	s.Received = v(a.m.received.WithLabelValues(name, "input", id))
	s.Published = v(a.m.published.WithLabelValues(name, "output", id))
	s.Dropped = v(a.m.dropped.WithLabelValues(name, id))
	return s
}
