package config

import (
	"net"
	"strconv"
)

// websocketAdvertise: an address to advertise for a listener that is off
// would be ignored.
func websocketAdvertise(c *Config) []*Error {
	if c.Network.WebsocketAdvertise == "" || c.Network.WebsocketPort != 0 {
		return nil
	}
	return []*Error{c.KeyError("plugin.choria.network.websocket_advertise",
		"set without plugin.choria.network.websocket_port, so nothing would use it; set the port, or remove this line")}
}

// websocketPort: the websocket listener shares listen_address with the
// client and cluster ports; the same number twice would stop the broker
// only once it binds, without a line to fix.
func websocketPort(c *Config) []*Error {
	n := c.Network
	if n.WebsocketPort == 0 {
		return nil
	}
	others := []struct {
		key  string
		host string
		port int
	}{
		{"plugin.choria.network.client_port", n.ListenAddress, n.ClientPort},
		{"plugin.choria.stats_port", c.StatsAddress, c.StatsPort},
		{"plugin.choria.network.pprof_port", "127.0.0.1", n.PprofPort},
	}
	if len(n.Peers) > 0 || c.UseSRV {
		others = append(others, struct {
			key  string
			host string
			port int
		}{"plugin.choria.network.peer_port", n.ListenAddress, n.PeerPort})
	}
	var errs []*Error
	for _, o := range others {
		if o.port == n.WebsocketPort && sameHost(o.host, n.ListenAddress) {
			errs = append(errs, c.KeyError("plugin.choria.network.websocket_port",
				strconv.Itoa(n.WebsocketPort)+" is also "+o.key+"; every listener needs a port of its own"))
		}
	}
	return errs
}

// sameHost: two listeners can clash, as one of them takes every address
// or both take the same one.
func sameHost(a, b string) bool {
	unspecified := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "" || ip != nil && ip.IsUnspecified()
	}
	return a == b || unspecified(a) || unspecified(b)
}
