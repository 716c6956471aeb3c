package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Peer is one entry of plugin.choria.network.peers.
type Peer struct {
	Entry string // as written
	Host  string
	Port  int
}

// ParsePeer reads a peers entry: a name, host:port or nats://host:port;
// without a port it gets defaultPort (plugin.choria.network.peer_port).
func ParsePeer(entry string, defaultPort int) (Peer, error) {
	raw := strings.TrimSpace(entry)
	if !strings.Contains(raw, "://") {
		raw = "nats://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return Peer{}, fmt.Errorf("plugin.choria.network.peers: %q is not a name, host:port or nats://host:port", entry)
	}
	p := Peer{Entry: entry, Host: u.Hostname(), Port: defaultPort}
	if u.Port() != "" {
		if p.Port, err = strconv.Atoi(u.Port()); err != nil || p.Port < 1 || p.Port > 65535 {
			return Peer{}, fmt.Errorf("plugin.choria.network.peers: %q has a bad port (1-65535)", entry)
		}
	}
	return p, nil
}
