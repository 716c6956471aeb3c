package broker

import (
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// GatewayStatus is what monitoring shows of the gateways.
type GatewayStatus struct {
	On      bool // gateway_port set
	Cluster string
	Addr    string // the gateway listener, host:port
	Plain   bool   // the listener speaks plaintext (a remote has tls.disable)
	// Links has one entry per remote cluster: each configured one, then
	// any other that linked with this broker, by name.
	Links []GatewayLink
}

// GatewayLink is this broker's links with one remote cluster: at most one
// outbound (which this broker sends through) and any number inbound (one
// per member of the remote cluster that dials us).
type GatewayLink struct {
	Cluster    string
	Configured bool // in gateway_remotes, not learned from another cluster
	Outbound   *GatewayConn
	Inbound    []GatewayConn
}

// GatewayConn is one gateway connection.
type GatewayConn struct {
	Addr              string // the remote end, host:port
	RTT               time.Duration
	InMsgs, OutMsgs   int64
	InBytes, OutBytes int64
}

// GatewayStatus reads the gateways from the engine; empty when off or not running.
func (b *Broker) GatewayStatus() GatewayStatus {
	st := GatewayStatus{On: b.gateway.on, Cluster: b.cfg.Network.ClusterName, Plain: b.gateway.plain}
	srv := b.Engine()
	if !st.On || srv == nil {
		return st
	}
	if a := srv.GatewayAddr(); a != nil {
		st.Addr = a.String()
	}
	gz, err := srv.Gatewayz(nil)
	if err != nil {
		return st
	}
	links := map[string]*GatewayLink{}
	link := func(name string) *GatewayLink {
		if l, ok := links[name]; ok {
			return l
		}
		l := &GatewayLink{Cluster: name}
		links[name] = l
		return l
	}
	for _, name := range b.gateway.remotes {
		link(name).Configured = true
	}
	for name, r := range gz.OutboundGateways {
		if r != nil && r.Connection != nil {
			c := gatewayConn(r.Connection)
			link(name).Outbound = &c
		}
	}
	for name, rs := range gz.InboundGateways {
		l := link(name)
		for _, r := range rs {
			if r != nil && r.Connection != nil {
				l.Inbound = append(l.Inbound, gatewayConn(r.Connection))
			}
		}
	}
	for _, name := range b.gateway.remotes {
		st.Links = append(st.Links, *links[name])
	}
	var others []string
	for name := range links {
		if !links[name].Configured {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range others {
		st.Links = append(st.Links, *links[name])
	}
	return st
}

func gatewayConn(ci *server.ConnInfo) GatewayConn {
	rtt, _ := time.ParseDuration(ci.RTT) // empty before the first ping
	return GatewayConn{Addr: net.JoinHostPort(ci.IP, strconv.Itoa(ci.Port)), RTT: rtt,
		InMsgs: ci.InMsgs, OutMsgs: ci.OutMsgs, InBytes: ci.InBytes, OutBytes: ci.OutBytes}
}

// GatewayAddr is the gateway listener's address, nil without gateways.
func (b *Broker) GatewayAddr() *net.TCPAddr {
	if b.srv == nil || !b.gateway.on {
		return nil
	}
	return b.srv.GatewayAddr()
}

// GatewaysRefused returns how many gateway links were refused for reason,
// one of GatewayRefusalReasons.
func (b *Broker) GatewaysRefused(reason string) uint64 {
	if c, ok := b.gatewaysRefused[reason]; ok {
		return c.Load()
	}
	return 0
}

// GatewayRefusalReasons are GatewaysRefused's reasons: the certificate
// reasons, "not a gateway", "duplicate server name", "plaintext", "other".
func GatewayRefusalReasons() []string {
	out := make([]string, len(gatewayRefusalReasons))
	for i, r := range gatewayRefusalReasons {
		out[i] = string(r)
	}
	return out
}
