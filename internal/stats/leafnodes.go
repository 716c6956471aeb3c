package stats

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/broker"
)

// leafCollector exports the leafnode links on each scrape from one Leafz:
// go-choria's per-link gauges (labels identity, host, port, account), and
// ours for configured remotes and refusals.
type leafCollector struct {
	b        *broker.Broker
	identity string

	rtt, inMsgs, outMsgs, inBytes, outBytes, subs *prometheus.Desc
	up, expected, refused                         *prometheus.Desc
}

func newLeafCollector(b *broker.Broker, identity string) *leafCollector {
	link := func(name, help string) *prometheus.Desc {
		return desc("choria_network_leafnode_"+name, help, "host", "port", "account")
	}
	return &leafCollector{b: b, identity: identity,
		rtt:      link("rtt_ms", "Round trip time of the leafnode link in milliseconds"),
		inMsgs:   link("in_msgs", "Messages received over the leafnode link"),
		outMsgs:  link("out_msgs", "Messages sent over the leafnode link"),
		inBytes:  link("in_bytes", "Bytes received over the leafnode link"),
		outBytes: link("out_bytes", "Bytes sent over the leafnode link"),
		subs:     link("subscriptions", "Interest the leafnode link carries"),
		up:       desc("choria_broker_leafnode_remotes_up", "Leafnode remotes (plugin.choria.network.leafnode_remotes) connected to their hub"),
		expected: desc("choria_broker_leafnode_remotes_expected", "Leafnode remotes configured"),
		refused:  desc("choria_broker_refused_leafnodes_total", "Leafnode links refused, inbound (a leaf's certificate) or outbound (the hub's), by reason", "reason"),
	}
}

func (c *leafCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rtt, c.inMsgs, c.outMsgs, c.inBytes, c.outBytes, c.subs, c.up, c.expected, c.refused} {
		ch <- d
	}
}

func (c *leafCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{c.identity}, labels...)...)
	}
	for _, r := range broker.LeafRefusalReasons() {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(c.b.LeafsRefused(r)), c.identity, r)
	}
	st := c.b.Leafnodes()
	up := 0
	for _, r := range st.Remotes {
		if r.Up {
			up++
		}
	}
	gauge(c.up, float64(up))
	gauge(c.expected, float64(len(st.Remotes)))
	// Two links of one address and account (a leaf cluster behind NAT)
	// would be one series: the first is kept, as a registry refuses twins.
	seen := map[string]bool{}
	for _, l := range st.Links {
		labels := []string{l.Host, strconv.Itoa(l.Port), l.Account}
		if key := strings.Join(labels, " "); seen[key] {
			continue
		} else {
			seen[key] = true
		}
		gauge(c.rtt, float64(l.RTT.Microseconds())/1000, labels...)
		gauge(c.inMsgs, float64(l.InMsgs), labels...)
		gauge(c.outMsgs, float64(l.OutMsgs), labels...)
		gauge(c.inBytes, float64(l.InBytes), labels...)
		gauge(c.outBytes, float64(l.OutBytes), labels...)
		gauge(c.subs, float64(l.Subscriptions), labels...)
	}
}

// leafPanel is the status page's Leafnodes section.
type leafPanel struct {
	Port    int
	Brokers bool
	Remotes []leafRemoteRow
	Links   []leafLinkRow
}

type leafRemoteRow struct {
	Name, URLs string
	Up         bool
}

type leafLinkRow struct {
	Direction, Name, RTT string
	InMsgs, OutMsgs      int64
}

// readLeafnodes gathers the panel; nil when leafnodes are not configured.
func readLeafnodes(b *broker.Broker) *leafPanel {
	st := b.Leafnodes()
	if !st.Configured() {
		return nil
	}
	p := &leafPanel{Port: st.Port, Brokers: st.Brokers}
	for _, r := range st.Remotes {
		p.Remotes = append(p.Remotes, leafRemoteRow{Name: r.Name, URLs: strings.Join(r.URLs, ", "), Up: r.Up})
	}
	for _, l := range st.Links {
		row := leafLinkRow{Direction: "leaf in", Name: l.Name, RTT: l.RTT.String(), InMsgs: l.InMsgs, OutMsgs: l.OutMsgs}
		if l.Outbound {
			row.Direction = "to hub"
			if l.Remote != "" {
				row.Direction = "to hub " + l.Remote
			}
		}
		p.Links = append(p.Links, row)
	}
	return p
}
