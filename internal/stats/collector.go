package stats

import (
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/broker"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// Roles, refusal reasons and violation kinds, always exported (0 included)
// so that dashboards and alerts see a series before the first event.
var (
	roles         = []authz.Role{authz.Privileged, authz.Federation, authz.Client, authz.Node}
	refusalReason = []pki.Reason{pki.NoCertificate, pki.UnknownCA, pki.Revoked, pki.Expired, pki.NotYetValid, pki.WrongUsage, pki.Invalid}
	violationKind = []string{"publish", "subscribe"}
)

// desc is a metric description with the identity label first.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append([]string{"identity"}, labels...), nil)
}

// networkCollector computes the network broker's metrics on each scrape
// from cheap counters: one Varz (no per-connection walk but the role
// table) and the broker's atomics.
type networkCollector struct {
	b        *broker.Broker
	identity string
	now      func() time.Time

	// go-choria's names (broker/network/stats.go), gauges as there.
	varz map[string]*prometheus.Desc

	byRole, refused, admitted, violations   *prometheus.Desc
	handshakes, hsLimit, hsInFlight, hsWait *prometheus.Desc
	certExpiry, crlNextUpdate               *prometheus.Desc
	caExpiry, reloadFailing, reloadTime     *prometheus.Desc
	routesUp, routesExpected, slowConsumers *prometheus.Desc
	routesRefused, logSuppressed            *prometheus.Desc
	websocket                               *prometheus.Desc
}

func newNetworkCollector(b *broker.Broker, identity string) *networkCollector {
	c := &networkCollector{b: b, identity: identity, now: time.Now, varz: map[string]*prometheus.Desc{}}
	for _, n := range []struct{ name, help string }{
		{"connections", "Current connections on the network broker"},
		{"total_connections", "Total connections received since start"},
		{"routes", "Current active routes to other brokers"},
		{"remotes", "Current active connections to other brokers"},
		{"leafnode_remotes", "Current active leafnode connections"},
		{"in_msgs", "Messages received by the network broker"},
		{"out_msgs", "Messages sent by the network broker"},
		{"in_bytes", "Bytes received by the network broker"},
		{"out_bytes", "Bytes sent by the network broker"},
		{"slow_consumers", "Slow consumers disconnected by the network broker"},
		{"subscriptions", "Subscriptions on the network broker"},
	} {
		c.varz[n.name] = desc("choria_network_"+n.name, n.help)
	}
	c.byRole = desc("choria_broker_connections_by_role", "Current client connections by role", "role")
	c.refused = desc("choria_broker_refused_connections_total", "Client connections refused at admission, by reason (deny_server_connections: by role; system_user: a wrong system account password)", "reason")
	c.admitted = desc("choria_broker_admitted_connections_total", "Client certificates admitted")
	c.violations = desc("choria_broker_subject_violations_total", "Publishes and subscriptions refused by role, by kind", "kind")
	c.handshakes = desc("choria_broker_tls_handshakes_total", "TLS handshakes through the admission gate, by result (admitted, of those queued after waiting for a slot, shed, completed, timed_out, and of those abandoned: freed early as the client had hung up)", "result")
	c.hsWait = desc("choria_broker_tls_handshakes_waiting", "ClientHellos waiting for a handshake slot")
	c.hsLimit = desc("choria_broker_tls_handshake_limit", "Current limit of TLS handshakes in flight (0: admission off)")
	c.hsInFlight = desc("choria_broker_tls_handshakes_in_flight", "TLS handshakes in flight")
	c.certExpiry = desc("choria_broker_certificate_expiry_seconds", "Seconds until the broker's certificate expires (negative: expired)")
	c.crlNextUpdate = desc("choria_broker_crl_next_update_seconds", "Seconds until the CRL's nextUpdate (negative: stale)")
	c.caExpiry = desc("choria_broker_ca_expiry_seconds", "Seconds until the first CA certificate of the bundle in force expires (negative: expired)")
	c.reloadFailing = desc("choria_broker_pki_reload_failing", "1 while the last reload of the file failed and the previous one stays in force (a restart would fail)", "file")
	c.reloadTime = desc("choria_broker_pki_reload_timestamp_seconds", "Unix time the certificate, key, CA bundle and CRL in force were last loaded without error")
	c.routesUp = desc("choria_broker_cluster_routes_up", "Cluster peers connected")
	c.routesExpected = desc("choria_broker_cluster_routes_expected", "Cluster peers configured, this broker left out")
	c.slowConsumers = desc("choria_broker_slow_consumers_total", "Slow consumers by kind of connection", "kind")
	c.routesRefused = desc("choria_broker_refused_routes_total", "Cluster peers refused, by reason", "reason")
	c.websocket = desc("choria_broker_websocket_connections", "Current websocket connections by role (only with plugin.choria.network.websocket_port); they are in connections_by_role too", "role")
	c.logSuppressed = desc("choria_broker_log_lines_suppressed_total", "Log lines about refusals and connection errors held back by the log rate limit, by kind", "kind")
	return c
}

func (c *networkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.varz {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{c.byRole, c.refused, c.admitted, c.violations, c.handshakes, c.hsLimit, c.hsInFlight, c.hsWait, c.certExpiry, c.crlNextUpdate, c.caExpiry, c.reloadFailing, c.reloadTime, c.routesUp, c.routesExpected, c.slowConsumers, c.routesRefused, c.logSuppressed, c.websocket} {
		ch <- d
	}
}

func (c *networkCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{c.identity}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{c.identity}, labels...)...)
	}
	b := c.b
	if srv := b.Engine(); srv != nil {
		if v, err := srv.Varz(nil); err == nil {
			c.collectVarz(v, gauge, counter)
		}
	}
	for role, n := range rolesCount(b) {
		gauge(c.byRole, float64(n), string(role))
	}
	if ws := b.WebsocketByRole(); ws != nil {
		for _, r := range roles {
			ws[r] += 0
		}
		for role, n := range ws {
			gauge(c.websocket, float64(n), string(role))
		}
	}
	for _, r := range refusalReason {
		counter(c.refused, b.Refused(r), string(r))
	}
	counter(c.refused, b.Denied(), "deny_server_connections")
	counter(c.refused, b.SystemRefused(), "system_user")
	for _, r := range broker.PeerRefusalReasons() {
		counter(c.routesRefused, b.PeersRefused(r), r)
	}
	for _, k := range broker.LogLimitKinds() {
		counter(c.logSuppressed, b.LogSuppressed(k), k)
	}
	counter(c.admitted, b.Admitted())
	for _, k := range violationKind {
		counter(c.violations, b.Violations(k), k)
	}
	h := b.Handshakes()
	counter(c.handshakes, h.Admitted, "admitted")
	counter(c.handshakes, h.Queued, "queued")
	counter(c.handshakes, h.Shed, "shed")
	counter(c.handshakes, h.Completed, "completed")
	counter(c.handshakes, h.TimedOut, "timed_out")
	counter(c.handshakes, h.Abandoned, "abandoned")
	gauge(c.hsLimit, float64(h.Limit))
	gauge(c.hsWait, float64(h.Waiting))
	gauge(c.hsInFlight, float64(h.InFlight))
	now := c.now()
	ts := b.TrustStatus()
	if !ts.CertNotAfter.IsZero() {
		gauge(c.certExpiry, ts.CertNotAfter.Sub(now).Seconds())
	}
	if !ts.CRLNextUpdate.IsZero() {
		gauge(c.crlNextUpdate, ts.CRLNextUpdate.Sub(now).Seconds())
	}
	if !ts.CANotAfter.IsZero() {
		gauge(c.caExpiry, ts.CANotAfter.Sub(now).Seconds())
	}
	ps := b.PKIStatus()
	for _, p := range pki.Parts {
		v := 0.0
		if _, bad := ps.Failing[p]; bad {
			v = 1
		}
		gauge(c.reloadFailing, v, string(p))
	}
	if !ps.LastReload.IsZero() {
		gauge(c.reloadTime, float64(ps.LastReload.UnixNano())/1e9)
	}
	gauge(c.routesUp, float64(len(b.RouteNames())))
	gauge(c.routesExpected, float64(b.ExpectedPeers()))
}

func (c *networkCollector) collectVarz(v *server.Varz, gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string)) {
	for name, val := range map[string]float64{
		"connections": float64(v.Connections), "total_connections": float64(v.TotalConnections),
		"routes": float64(v.Routes), "remotes": float64(v.Remotes), "leafnode_remotes": float64(v.Leafs),
		"in_msgs": float64(v.InMsgs), "out_msgs": float64(v.OutMsgs), "in_bytes": float64(v.InBytes),
		"out_bytes": float64(v.OutBytes), "slow_consumers": float64(v.SlowConsumers), "subscriptions": float64(v.Subscriptions),
	} {
		gauge(c.varz[name], val)
	}
	if s := v.SlowConsumersStats; s != nil {
		counter(c.slowConsumers, s.Clients, "client")
		counter(c.slowConsumers, s.Routes, "route")
		counter(c.slowConsumers, s.Gateways, "gateway")
		counter(c.slowConsumers, s.Leafs, "leaf")
	}
}

// rolesCount is ConnectionsByRole with every role present.
func rolesCount(b *broker.Broker) map[authz.Role]int {
	out := b.ConnectionsByRole()
	for _, r := range roles {
		out[r] += 0
	}
	return out
}

// buildInfo is go-choria's choria_build_info{version,sha,identity} = 1.
func buildInfo(version, sha, identity string) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "choria_build_info", Help: "Build information about the running broker"}, []string{"version", "sha", "identity"})
	g.WithLabelValues(version, sha, identity).Set(1)
	return g
}
