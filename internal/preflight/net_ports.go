package preflight

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
)

// brokerProgram is the process name of a running broker.
const brokerProgram = "choria-broker"

// ports: the broker cannot start when another program holds one of its
// ports; a port held by this broker itself (already running) is fine.
type ports struct{}

func (ports) Name() string { return "net.ports" }

// listener is one port the broker opens.
type listener struct {
	kind    string // client, cluster, leafnode, monitoring
	setting string
	host    string
	port    int
}

func (ports) Run(ctx context.Context, env *Env) []Result {
	c := env.Config
	m := loadMaterial(env)
	ls := []listener{{"client", "plugin.choria.network.client_port", c.Network.ListenAddress, c.Network.ClientPort}}
	if list, _, err := clusterPeers(ctx, env, m.leaf()); err == nil && hasOthers(list) {
		ls = append(ls, listener{"cluster", "plugin.choria.network.peer_port", c.Network.ListenAddress, c.Network.PeerPort})
	}
	if c.Network.GatewayPort > 0 {
		ls = append(ls, listener{"gateway", "plugin.choria.network.gateway_port", c.Network.ListenAddress, c.Network.GatewayPort})
	}
	if c.Network.LeafnodePort > 0 {
		ls = append(ls, listener{"leafnode", "plugin.choria.network.leafnode_port", c.Network.ListenAddress, c.Network.LeafnodePort})
	}
	if c.StatsPort > 0 {
		ls = append(ls, listener{"monitoring", "plugin.choria.stats_port", c.StatsAddress, c.StatsPort})
	}
	var out []Result
	for _, l := range ls {
		out = append(out, checkPort(ctx, env, m, l))
	}
	return out
}

func hasOthers(list []peer) bool {
	for _, p := range list {
		if !p.self {
			return true
		}
	}
	return false
}

func checkPort(ctx context.Context, env *Env, m *material, l listener) Result {
	addr := net.JoinHostPort(l.host, strconv.Itoa(l.port))
	res := Result{Item: fmt.Sprintf("%s %d", l.kind, l.port), Wanted: "free, or held by this broker", Status: Pass}
	err := env.Sys.Bind(addr)
	switch {
	case err == nil:
		res.Found = addr + " is free"
		return res
	case errors.Is(err, syscall.EACCES):
		res.Status, res.Found = Fail, addr+": permission denied"
		res.Fix = "ports below 1024 need root or CAP_NET_BIND_SERVICE (AmbientCapabilities= in the unit), or set " + l.setting + " above 1023"
		return res
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		res.Status, res.Found = Fail, l.host+" is not an address of this host"
		res.Fix = "set the listen address to an address of this host, or :: for all"
		return res
	case !errors.Is(err, syscall.EADDRINUSE):
		res.Status, res.Found, res.Fix = Fail, err.Error(), "check "+l.setting
		return res
	}
	owner, ownerErr := env.Sys.PortOwner(l.port)
	if ownerErr == nil && owner.Name == brokerProgram {
		res.Found = fmt.Sprintf("%s held by %s (pid %d)", addr, owner.Name, owner.PID)
		return res
	}
	if name, ok := heldByUs(ctx, env, m, l); ok {
		res.Found = fmt.Sprintf("%s held by this broker (it answers as %s)", addr, name)
		return res
	}
	res.Status = Fail
	holder := "another program"
	if ownerErr == nil {
		holder = fmt.Sprintf("%s (pid %d)", owner.Name, owner.PID)
	}
	res.Found = fmt.Sprintf("%s held by %s", addr, holder)
	res.Fix = fmt.Sprintf("stop %s, or set %s to a free port", holder, l.setting)
	return res
}

// heldByUs asks what listens on a port for its NATS server name, which the
// broker sets to its identity.
func heldByUs(ctx context.Context, env *Env, m *material, l listener) (string, bool) {
	host := l.host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(l.port))
	var name string
	switch l.kind {
	case "client", "leafnode": // both send INFO in clear before TLS
		ctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		conn, err := env.Sys.Dial(ctx, "tcp", addr)
		if err != nil {
			return "", false
		}
		defer conn.Close()
		info, f := readInfo(conn, addr, true, brokerKind)
		if f != nil {
			return "", false
		}
		name = info.ServerName
	case "cluster":
		p, f := probeRoute(ctx, env, m, addr, env.Config.Identity)
		if f != nil {
			return "", false
		}
		name = p.info.ServerName
	case "gateway":
		name = gatewayName(ctx, env, m, addr)
	case "monitoring":
		name = varzName(ctx, env, addr)
	}
	return name, name != "" && name == env.Config.Identity
}

// gatewayName is the identity of the broker on a gateway port: the server
// name of a plaintext one, or ours when a TLS one presents our certificate
// (it may not take our certificate as a gateway, so its INFO may not come).
func gatewayName(ctx context.Context, env *Env, m *material, addr string) string {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout+infoTimeout)
	defer cancel()
	conn, err := env.Sys.Dial(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(dialTimeout + infoTimeout))
	if plainGateways(env.Config) {
		info, f := readInfo(conn, addr, true, brokerKind)
		if f != nil {
			return ""
		}
		return info.ServerName
	}
	leaf := m.leaf()
	if leaf == nil {
		return ""
	}
	ours := false
	tc := tls.Client(conn, &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, // compared below
		VerifyConnection: func(cs tls.ConnectionState) error {
			ours = bytes.Equal(cs.PeerCertificates[0].Raw, leaf.Raw)
			return errors.New("seen") // no need to go on
		}})
	_ = tc.HandshakeContext(ctx)
	if ours {
		return env.Config.Identity
	}
	return ""
}

// plainGateways: a remote with tls.disable makes the gateway port plaintext.
func plainGateways(c *config.Config) bool {
	for _, r := range c.Network.Gateways {
		if r.TLS.Disable {
			return true
		}
	}
	return false
}

// varzName is server_name from the monitoring port's /varz.
func varzName(ctx context.Context, env *Env, addr string) string {
	client := &http.Client{Timeout: dialTimeout + infoTimeout, Transport: &http.Transport{DialContext: env.Sys.Dial}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/varz", nil)
	if err != nil {
		return ""
	}
	resp, err := client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct {
		ServerName string `json:"server_name"` // /varz's gateway is an object, not INFO's name
	}
	if json.NewDecoder(resp.Body).Decode(&v) != nil {
		return ""
	}
	return v.ServerName
}
