package preflight

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// peerSRV is the SRV service Choria publishes broker peers under.
const peerSRV = "mcollective-broker"

// peer is one cluster member as the broker reads plugin.choria.network.peers.
type peer struct {
	entry string
	host  string
	port  int
	self  bool
}

// clusterPeers is the peers list, or the SRV records when it is empty and
// use_srv is on, as the broker builds it; source says which.
func clusterPeers(ctx context.Context, env *Env, leaf *x509.Certificate) (peers []peer, source string, err error) {
	c := env.Config
	entries, source := c.Network.Peers, "plugin.choria.network.peers"
	if len(entries) == 0 && c.UseSRV {
		name := srvName(env)
		if name == "" {
			return nil, "", nil
		}
		source = name
		srvs, err := lookupSRV(ctx, env)
		if err != nil {
			return nil, source, err
		}
		entries = nil
		for _, s := range srvs {
			entries = append(entries, net.JoinHostPort(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))))
		}
	}
	for _, e := range entries {
		if strings.TrimSpace(e) == "" {
			continue
		}
		cp, err := config.ParsePeer(e, c.Network.PeerPort)
		if err != nil {
			return nil, source, err
		}
		p := peer{entry: e, host: cp.Host, port: cp.Port}
		p.self = isSelf(env, leaf, p.host, p.port)
		peers = append(peers, p)
	}
	return peers, source, nil
}

// isSelf recognises this broker in the shared peers list as the broker
// does: its cluster port under its identity, a certificate name, or an
// address it listens on.
func isSelf(env *Env, leaf *x509.Certificate, host string, port int) bool {
	n := env.Config.Network
	if port != n.PeerPort {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == strings.ToLower(env.Config.Identity) {
		return true
	}
	if leaf != nil {
		for _, name := range pki.Names(leaf) {
			if strings.ToLower(name) == host {
				return true
			}
		}
	}
	listen, ip := net.ParseIP(n.ListenAddress), net.ParseIP(host)
	return ip != nil && listen != nil && (ip.Equal(listen) || (listen.IsUnspecified() && env.Sys.LocalIP(ip)))
}

// srvName is the record the broker looks up for peers, "" without a domain.
func srvName(env *Env) string {
	domain := env.Config.SRVDomain
	if domain == "" {
		if i := strings.IndexByte(env.Config.Identity, '.'); i > 0 {
			domain = env.Config.Identity[i+1:]
		}
	}
	if domain == "" {
		return ""
	}
	return "_" + peerSRV + "._tcp." + domain
}

// srvAnswer keeps one SRV lookup per run: a dead resolver costs its
// timeout once, not in every check that asks.
type srvAnswer struct {
	srvs []*net.SRV
	err  error
}

// lookupSRV returns no records and no error when the name does not exist.
func lookupSRV(ctx context.Context, env *Env) ([]*net.SRV, error) {
	if env.srv == nil {
		srvs, err := querySRV(ctx, env)
		env.srv = &srvAnswer{srvs, err}
	}
	return env.srv.srvs, env.srv.err
}

func querySRV(ctx context.Context, env *Env) ([]*net.SRV, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name := srvName(env)
	domain := strings.TrimPrefix(name, "_"+peerSRV+"._tcp.")
	srvs, err := env.Sys.LookupSRV(ctx, peerSRV, "tcp", domain)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, nil
	}
	return srvs, err
}
