package stats

import (
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/broker"
)

// streamsCollector exports Choria Streams from the engine's Jsz: go-choria's
// choria_network_stream_* gauges, plus who leads the meta group and each
// stream this member holds.
type streamsCollector struct {
	b        *broker.Broker
	identity string
	jsz      map[string]*prometheus.Desc
	meta     *prometheus.Desc
	leader   *prometheus.Desc
	degraded *prometheus.Desc
	damaged  *prometheus.Desc
}

func newStreamsCollector(b *broker.Broker, identity string) *streamsCollector {
	c := &streamsCollector{b: b, identity: identity, jsz: map[string]*prometheus.Desc{}}
	for name, help := range map[string]string{
		"memorystore_max": "Choria Streams memory store limit (bytes)", "filestore_max": "Choria Streams file store limit (bytes)",
		"memorystore_used": "Choria Streams memory store used (bytes)", "filestore_used": "Choria Streams file store used (bytes)",
		"streams": "Streams on this broker", "consumers": "Consumers on this broker",
		"messages": "Messages in the streams on this broker", "message_bytes": "Bytes of the messages in the streams on this broker",
	} {
		c.jsz[name] = desc("choria_network_stream_"+name, help)
	}
	c.meta = desc("choria_broker_stream_meta_leader", "1 with the name of the JetStream meta leader as seen by this broker", "leader")
	c.leader = desc("choria_broker_stream_leader", "1 for each stream this broker holds, with its leader", "stream", "leader")
	c.degraded = desc("choria_broker_streams_degraded", "1 when Choria Streams is configured but off, a standard stream is not in place yet, or a stream came back damaged")
	c.damaged = desc("choria_broker_stream_damaged", "1 for each stream that came back from its store damaged at start (see the log)", "stream")
	return c
}

func (c *streamsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.jsz {
		ch <- d
	}
	ch <- c.meta
	ch <- c.leader
	ch <- c.degraded
	ch <- c.damaged
}

func (c *streamsCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{c.identity}, labels...)...)
	}
	st := c.b.StreamsStatus()
	if !st.Configured {
		return
	}
	degraded := 0.0
	if st.Error != "" || len(st.Pending) > 0 || len(st.Damaged) > 0 {
		degraded = 1
	}
	gauge(c.degraded, degraded)
	for name := range st.Damaged {
		gauge(c.damaged, 1, name)
	}
	srv := c.b.Engine()
	if srv == nil || !srv.JetStreamEnabled() {
		return
	}
	jsz, err := srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return
	}
	for name, v := range map[string]float64{
		"memorystore_max": float64(jsz.Config.MaxMemory), "filestore_max": float64(jsz.Config.MaxStore),
		"memorystore_used": float64(jsz.Memory), "filestore_used": float64(jsz.Store),
		"streams": float64(jsz.Streams), "consumers": float64(jsz.Consumers),
		"messages": float64(jsz.Messages), "message_bytes": float64(jsz.Bytes),
	} {
		gauge(c.jsz[name], v)
	}
	if jsz.Meta != nil && jsz.Meta.Leader != "" {
		gauge(c.meta, 1, jsz.Meta.Leader)
	}
	for _, a := range jsz.AccountDetails {
		for _, s := range a.Streams {
			leader := srv.Name() // a single broker leads all its streams
			if s.Cluster != nil {
				leader = s.Cluster.Leader
			}
			gauge(c.leader, 1, s.Name, leader)
		}
	}
}
