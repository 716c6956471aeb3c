package stats

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/broker"
)

// gatewaysCollector exports the gateways from the engine's Gatewayz, per
// remote cluster: links up each way, the outbound link's RTT, and traffic.
type gatewaysCollector struct {
	b        *broker.Broker
	identity string
	remotes  *prometheus.Desc
	links    *prometheus.Desc
	rtt      *prometheus.Desc
	traffic  map[string]*prometheus.Desc
	refused  *prometheus.Desc
}

func newGatewaysCollector(b *broker.Broker, identity string) *gatewaysCollector {
	c := &gatewaysCollector{b: b, identity: identity, traffic: map[string]*prometheus.Desc{}}
	c.remotes = desc("choria_network_gateway_remotes", "Remote clusters this broker has an outbound gateway link to")
	c.links = desc("choria_network_gateway_links", "Gateway links up with a remote cluster, by direction (outbound: at most 1, this broker sends through it; inbound: one per remote member dialling in); configured remotes are 0 while down", "cluster", "direction")
	c.rtt = desc("choria_network_gateway_rtt_ms", "Round trip time of the outbound gateway link to a remote cluster, in milliseconds", "cluster")
	for name, help := range map[string]string{
		"in_msgs": "Messages received over gateway links with a remote cluster", "out_msgs": "Messages sent over gateway links to a remote cluster",
		"in_bytes": "Bytes received over gateway links with a remote cluster", "out_bytes": "Bytes sent over gateway links to a remote cluster",
	} {
		c.traffic[name] = desc("choria_network_gateway_"+name, help+", by direction of the link (counts restart with a link)", "cluster", "direction")
	}
	c.refused = desc("choria_broker_refused_gateways_total", "Gateway links refused, by reason (a certificate reason, not a gateway, duplicate server name, plaintext, no TLS handshake, other)", "reason")
	return c
}

func (c *gatewaysCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.remotes, c.links, c.rtt, c.refused} {
		ch <- d
	}
	for _, d := range c.traffic {
		ch <- d
	}
}

func (c *gatewaysCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{c.identity}, labels...)...)
	}
	st := c.b.GatewayStatus()
	if !st.On {
		return
	}
	for _, r := range broker.GatewayRefusalReasons() {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(c.b.GatewaysRefused(r)), c.identity, r)
	}
	up := 0
	for _, l := range st.Links {
		out := 0.0
		if l.Outbound != nil {
			out, up = 1, up+1
			gauge(c.rtt, float64(l.Outbound.RTT.Microseconds())/1000, l.Cluster)
			c.traffic1(gauge, l.Cluster, "outbound", []broker.GatewayConn{*l.Outbound})
		}
		gauge(c.links, out, l.Cluster, "outbound")
		gauge(c.links, float64(len(l.Inbound)), l.Cluster, "inbound")
		if len(l.Inbound) > 0 {
			c.traffic1(gauge, l.Cluster, "inbound", l.Inbound)
		}
	}
	gauge(c.remotes, float64(up))
}

// traffic1 exports the summed traffic of conns, the links of one direction.
func (c *gatewaysCollector) traffic1(gauge func(*prometheus.Desc, float64, ...string), cluster, dir string, conns []broker.GatewayConn) {
	var in, out, inB, outB int64
	for _, g := range conns {
		in, out, inB, outB = in+g.InMsgs, out+g.OutMsgs, inB+g.InBytes, outB+g.OutBytes
	}
	gauge(c.traffic["in_msgs"], float64(in), cluster, dir)
	gauge(c.traffic["out_msgs"], float64(out), cluster, dir)
	gauge(c.traffic["in_bytes"], float64(inB), cluster, dir)
	gauge(c.traffic["out_bytes"], float64(outB), cluster, dir)
}

// gatewaysPanel is the status page's Gateways section.
type gatewaysPanel struct {
	Cluster, Addr string
	Plain         bool
	Rows          []gatewayRow
	Refused       []roleCount // reasons with refusals only
}

type gatewayRow struct {
	Cluster, Kind   string // configured, or learned (gossip, or it dialled us)
	Up              bool   // an outbound link: this broker can send to the cluster
	Addr, RTT       string
	Inbound         int
	InMsgs, OutMsgs int64
}

// readGateways gathers the panel; nil without gateways.
func readGateways(b *broker.Broker) *gatewaysPanel {
	st := b.GatewayStatus()
	if !st.On {
		return nil
	}
	p := &gatewaysPanel{Cluster: st.Cluster, Addr: st.Addr, Plain: st.Plain}
	for _, l := range st.Links {
		r := gatewayRow{Cluster: l.Cluster, Kind: "learned", Inbound: len(l.Inbound)}
		if l.Configured {
			r.Kind = "configured"
		}
		if o := l.Outbound; o != nil {
			r.Up, r.Addr, r.RTT = true, o.Addr, o.RTT.String()
			r.InMsgs, r.OutMsgs = o.InMsgs, o.OutMsgs
		}
		for _, in := range l.Inbound {
			r.InMsgs, r.OutMsgs = r.InMsgs+in.InMsgs, r.OutMsgs+in.OutMsgs
		}
		p.Rows = append(p.Rows, r)
	}
	for _, reason := range broker.GatewayRefusalReasons() {
		if n := b.GatewaysRefused(reason); n > 0 {
			p.Refused = append(p.Refused, roleCount{reason, int(n)})
		}
	}
	return p
}
