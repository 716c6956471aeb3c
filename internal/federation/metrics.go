package federation

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Choria's federation metrics (names and labels as go-choria's
// broker/federation/stats), our drop counter, and the connector metrics
// every Choria NATS connection feeds.
type metrics struct {
	received, published, errors *prometheus.CounterVec
	time                        *prometheus.SummaryVec
	dropped                     *prometheus.CounterVec

	connectAttempts, reconnections, closed, connErrors prometheus.Counter
	connectTime                                        prometheus.Summary

	cluster, identity string
}

// Values of the connected_to label.
const (
	federationSide = "federation"
	collectiveSide = "collective"
	unconnected    = "unconnected"
)

// newMetrics registers the metrics on reg; notAfter is when the
// certificate in use expires, read at each scrape.
func newMetrics(reg prometheus.Registerer, cluster, identity string, notAfter func() time.Time) (*metrics, error) {
	labels := []string{"name", "worker", "connected_to", "cluster", "identity"}
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "choria_federation_received_msgs", Help: "Number of messages received by a Federation Broker worker",
		}, labels),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "choria_federation_published_msgs", Help: "Number of messages published by a Federation Broker worker",
		}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "choria_federation_errors", Help: "Messages that could not be handled",
		}, labels),
		time: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: "choria_federation_time", Help: "Time taken to process messages",
		}, labels),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "choria_federation_dropped_msgs", Help: "Messages or targets the Federation Broker dropped, by reason",
		}, []string{"direction", "reason", "cluster", "identity"}),
		connectAttempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "choria_connector_initial_connection_attempts", Help: "How many times initial connections were attempted",
		}),
		reconnections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "choria_connector_reconnections", Help: "How many times the connector reconnected",
		}),
		closed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "choria_connector_connection_closed", Help: "How many times the connection was closed",
		}),
		connErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "choria_connector_errors", Help: "How many errors the connector encountered",
		}),
		connectTime: prometheus.NewSummary(prometheus.SummaryOpts{
			Name: "choria_connector_initial_connect_time", Help: "Time taken to make the initial connection",
		}),
		cluster:  cluster,
		identity: identity,
	}
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "choria_federation_certificate_expiry_seconds",
		Help:        "Seconds until the federation broker's certificate expires (negative: expired); follows SIGHUP reloads",
		ConstLabels: prometheus.Labels{"cluster": cluster, "identity": identity},
	}, func() float64 { return time.Until(notAfter()).Seconds() })
	for _, c := range []prometheus.Collector{m.received, m.published, m.errors, m.time, m.dropped, m.connectAttempts, m.reconnections, m.closed, m.connErrors, m.connectTime, expiry} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, d := range []direction{requests, replies} {
		for _, r := range Reasons {
			m.dropped.WithLabelValues(d.name, string(r), cluster, identity)
		}
	}
	return m, nil
}

// stage is one worker's resolved counters, so that the hot path does no
// label look-ups.
type stage struct {
	received, published, errors prometheus.Counter
	time                        prometheus.Observer
}

func (m *metrics) stage(name string, worker int, connectedTo string) stage {
	l := []string{name, strconv.Itoa(worker), connectedTo, m.cluster, m.identity}
	s := stage{
		received: m.received.WithLabelValues(l...),
		errors:   m.errors.WithLabelValues(l...),
		time:     m.time.WithLabelValues(l...),
	}
	if name == egestName {
		s.published = m.published.WithLabelValues(l...) // only egest publishes
	}
	return s
}

// Worker names of the ingest and egest stages in metrics.
const (
	ingestName = "nats_ingest"
	egestName  = "nats_egest"
)

// drops resolves a direction's drop counters.
func (m *metrics) drops(d direction) map[Reason]prometheus.Counter {
	out := make(map[Reason]prometheus.Counter, len(Reasons))
	for _, r := range Reasons {
		out[r] = m.dropped.WithLabelValues(d.name, string(r), m.cluster, m.identity)
	}
	return out
}
