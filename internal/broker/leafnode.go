package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// Leafnodes join brokers across sites: a leaf broker dials its hub's
// leafnode port and the two exchange interest, so a client on either side
// reaches nodes on both. A link carries the traffic of everything behind
// it, so it is not a role: only a certificate matching
// plugin.choria.network.leafnode_brokers may be a leafnode, and it then
// gets every right in the Choria account, as a cluster peer does. The
// broker behind it gives each of its own connections its role; the
// engine's system account never crosses a link.

const (
	leafBrokersKey = "plugin.choria.network.leafnode_brokers"
	leafRemotesKey = "plugin.choria.network.leafnode_remotes"
	clusterNameKey = "plugin.choria.network.gateway_name"
	domainKey      = "plugin.choria.network.stream.domain"

	// defaultClusterName is gateway_name's default, go-choria's too: two
	// clusters that both keep it cannot be hub and leaf (gc#1779).
	defaultClusterName = "CHORIA"

	// leafAuthTimeout is how long a leaf has for its CONNECT after TLS,
	// as go-choria gives it: a leaf may be a long way off.
	leafAuthTimeout = 10 * time.Second
)

// leafRole labels leafnode links in ConnectionsByRole.
const leafRole authz.Role = "leafnode"

// leafState is what the broker knows of its leafnodes.
type leafState struct {
	rule    pki.PeerRule // who may connect as a leafnode
	remotes []config.LeafRemote
	// forward: this broker has no Streams of its own, and its clients'
	// JetStream requests cross its remotes to the hub's.
	forward bool
	// insecureOK: every remote that skips Go's own verification checks
	// the hub itself, so the engine's warning about it is not news.
	insecureOK bool
	// dropped: hubs that closed our links before they were up, by
	// address, when last explained; their retries are not logged.
	dropped sync.Map
	// up: the addresses of the outbound links up, for the log filters.
	up atomic.Pointer[map[string]bool]
}

// hubQuiet is how long after explaining a hub's drop its retries go unlogged.
const hubQuiet = time.Minute

func (l *leafState) drop(addr string) { l.dropped.Store(addr, time.Now()) }

func (l *leafState) dropping(addr string) bool {
	v, ok := l.dropped.Load(addr)
	return ok && time.Since(v.(time.Time)) < hubQuiet
}

// checkLeafConfig is CheckConfig's part for leafnodes.
func checkLeafConfig(cfg *config.Config) error {
	n := cfg.Network
	remotes, err := cfg.LeafRemotes()
	if err != nil {
		return err
	}
	if _, err := pki.CompilePatterns(leafBrokersKey, n.LeafnodeBrokers); err != nil {
		return err
	}
	if p := n.LeafnodePort; p > 0 && (p == n.ClientPort || p == n.PeerPort && len(n.Peers) > 0) {
		where := ""
		if w := cfg.Where("plugin.choria.network.leafnode_port"); w != "" {
			where = w + ": "
		}
		return fmt.Errorf("%splugin.choria.network.leafnode_port = %d is also the client or cluster port (plugin.choria.network.client_port, peer_port); give leafnodes a port of their own, such as 7422", where, p)
	}
	// More than one entry names another member; SRV peers are checked
	// once resolved (New).
	if len(remotes) > 0 && len(n.Peers) > 1 {
		return clusterNameClash(cfg)
	}
	return nil
}

// clusterNameClash refuses a clustered leaf that keeps the default
// cluster name, which its hub most likely has too: the engine would
// refuse the link and retry every 30 s. Unclustered, the engine names
// the cluster after the broker's identity, which cannot clash.
func clusterNameClash(cfg *config.Config) error {
	if cfg.Network.ClusterName != defaultClusterName || cfg.Raw[clusterNameKey] != "" {
		return nil
	}
	where := ""
	if w := cfg.Where(leafRemotesKey); w != "" {
		where = w + ": "
	}
	return fmt.Errorf("%s%s: this broker is clustered and dials leafnode remotes, so its cluster's name must differ from its hub's, and %s is every cluster's default (go-choria's too); set %s to a name of this cluster's own, such as BRANCH1, on every member",
		where, clusterNameKey, defaultClusterName, clusterNameKey)
}

// leafnodeOptions configures the leafnode listener, the remotes and what
// Choria Streams does across the links. It runs after streamsOptions.
func (b *Broker) leafnodeOptions(opts *server.Options) error {
	n := b.cfg.Network
	remotes, err := b.cfg.LeafRemotes()
	if err != nil {
		return err
	}
	if err := b.cfg.LeafRemoteFiles(remotes); err != nil {
		return err
	}
	if len(remotes) > 0 && opts.Cluster.Port != 0 {
		if err := clusterNameClash(b.cfg); err != nil {
			return err
		}
	}
	b.leaf.remotes = remotes
	if n.LeafnodePort > 0 {
		if err := b.leafListener(opts); err != nil {
			return err
		}
		if opts.Gateway.Port != 0 || opts.Gateway.Name != "" {
			// The engine wants the system account declared when a broker
			// has both; it is the one it makes anyway.
			opts.Accounts = append(opts.Accounts, server.NewAccount(server.DEFAULT_SYSTEM_ACCOUNT))
			opts.SystemAccount = server.DEFAULT_SYSTEM_ACCOUNT
		}
	}
	b.leaf.insecureOK = true
	for _, r := range remotes {
		ro, err := b.remoteOptions(r)
		if err != nil {
			return err
		}
		opts.LeafNode.Remotes = append(opts.LeafNode.Remotes, ro)
	}
	b.leafStreamsOptions(opts)
	return nil
}

// leafListener opens the leafnode port on listen_address with mutual TLS
// (CA, CRL, leafnode_brokers).
func (b *Broker) leafListener(opts *server.Options) error {
	n := b.cfg.Network
	patterns, err := pki.CompilePatterns(leafBrokersKey, n.LeafnodeBrokers)
	if err != nil {
		return err
	}
	b.leaf.rule = pki.PeerRule{Patterns: patterns, Setting: leafBrokersKey, Reason: pki.NotLeaf}
	if len(patterns) == 0 {
		b.log.Warn("LEAFNODES ALL REFUSED: plugin.choria.network.leafnode_port is set but plugin.choria.network.leafnode_brokers is empty, so no certificate may connect as a leafnode; set leafnode_brokers to patterns of the leaf brokers' certificate names, such as ^leaf\\d+\\.example\\.net$",
			"port", n.LeafnodePort, "setting", leafBrokersKey)
	}
	opts.LeafNode.Host = n.ListenAddress
	opts.LeafNode.Port = n.LeafnodePort
	opts.LeafNode.TLSConfig = b.leafTLSConfig()
	opts.LeafNode.TLSTimeout = n.TLSTimeout.Seconds()
	opts.LeafNode.AuthTimeout = leafAuthTimeout.Seconds()
	// Leafs dial the URLs they are given; gossiping the cluster's other
	// leafnode ports would send them to addresses nobody listed, as go-choria.
	opts.LeafNode.NoAdvertise = true
	return nil
}

// leafTLSConfig is the leafnode port's TLS: the broker's certificate, and
// the leaf's checked against CA, CRL and leafnode_brokers at the
// handshake, each refusal logged with who and why.
func (b *Broker) leafTLSConfig() *tls.Config {
	admit := b.admitTLS(func(remote string, cs tls.ConnectionState) error {
		return b.admitLeaf(remote, cs.PeerCertificates)
	})
	return b.hardenTLS(&tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if b.lameDuck.Load() {
				return nil, errLameDuck
			}
			return admit(hello)
		},
	})
}

// admitLeaf checks a leaf's certificate: from our CA, not revoked, and
// matching leafnode_brokers. Every node certificate is CA-signed, and a
// leafnode carries all traffic: without the pattern a stolen node
// certificate would escape its role.
func (b *Broker) admitLeaf(remote string, certs []*x509.Certificate) error {
	err := b.trust.Load().VerifyClient(certs, time.Now())
	if err == nil {
		_, err = b.leaf.rule.Match(certs[0])
	}
	if err == nil {
		return nil
	}
	var extra []any
	if re, ok := err.(*pki.RefusedError); ok && re.Reason == pki.NotLeaf && len(certs) > 0 {
		extra = []any{"fix", "if it is a leaf broker, add a pattern matching its name to " + leafBrokersKey + " and restart; a node's certificate must not be one",
			"pattern", authz.ExactPattern(certs[0].Subject.CommonName)}
	}
	return b.refuseLink(limitLeafs, b.leafsRefused, "remote", remote, err, extra...)
}

// authLeaf admits an inbound leafnode after its CONNECT: the engine asks
// the same authenticator as for clients. The certificate was checked at
// the handshake; it is checked again against the trust in force now.
func (b *Broker) authLeaf(c server.ClientAuthentication) bool {
	cs := c.GetTLSConnectionState()
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return false // the listener is TLS only
	}
	remote := "unknown"
	if a := c.RemoteAddress(); a != nil {
		remote = a.String()
	}
	if b.admitLeaf(remote, cs.PeerCertificates) != nil {
		return false
	}
	leaf := cs.PeerCertificates[0]
	// The Choria account ($G), no limits: the leaf broker enforces the
	// roles of the connections behind it.
	c.RegisterUser(&server.User{Username: leaf.Subject.CommonName})
	b.conns.Store(c.GetID(), &connInfo{certs: cs.PeerCertificates, name: leaf.Subject.CommonName, role: leafRole})
	b.log.Info("leafnode admitted", "remote", remote, "certificate", leaf.Subject.CommonName)
	return true
}

// remoteOptions is the engine's options for one outbound link.
func (b *Broker) remoteOptions(r config.LeafRemote) (*server.RemoteLeafOpts, error) {
	ro := &server.RemoteLeafOpts{
		LocalAccount: server.DEFAULT_GLOBAL_ACCOUNT, // go-choria's "choria"
		URLs:         r.URLs,
		Credentials:  r.Credentials,
	}
	if r.TLSDisable {
		b.log.Warn("LEAFNODE TLS IS OFF: this link carries fleet requests and replies in clear, and whoever answers at the address gets them; use it only for a hub that cannot do TLS",
			"remote", r.Name, "setting", r.Key("tls.disable"))
		return ro, nil
	}
	tc, err := b.remoteTLSConfig(r)
	if err != nil {
		return nil, err
	}
	ro.TLS, ro.TLSConfig = true, tc
	return ro, nil
}

// remoteTLSConfig presents the broker's certificate (or tls.cert) and
// checks the hub's against our CA and CRL (or tls.ca) and the name
// dialled, unless tls.verify is off.
func (b *Broker) remoteTLSConfig(r config.LeafRemote) (*tls.Config, error) {
	where := func(property string) string {
		if w := b.cfg.Where(r.Key(property)); w != "" {
			return w + ": "
		}
		return ""
	}
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Checked in VerifyConnection: against the CA and CRL in force
		// now, which change without a restart.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return b.cert.Load(), nil
		},
	}
	if r.TLSCert != "" {
		kp, err := pki.LoadKeyPair(r.TLSCert, r.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%s%s: %w", where("tls.cert"), r.Key("tls.cert"), err)
		}
		own := kp.TLS()
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return own, nil }
	}
	if !r.TLSVerify {
		b.leaf.insecureOK = false
		b.log.Warn("LEAFNODE HUB NOT VERIFIED: whoever answers at this remote's address is taken for the hub and gets the fleet's traffic; set it true once the hub has a certificate from a CA in tls.ca or ours",
			"remote", r.Name, "setting", r.Key("tls.verify"))
		return b.hardenTLS(tc), nil
	}
	trust := func() *pki.Trust { return b.trust.Load() }
	if r.TLSCA != "" {
		cas, err := pki.ReadCertificates(r.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("%s%s: %w", where("tls.ca"), r.Key("tls.ca"), err)
		}
		own := pki.NewTrust(cas, nil)
		trust = func() *pki.Trust { return own }
	}
	// The name dialled: the engine sends it as SNI, except for an address,
	// which the hub's certificate must then carry as one of the urls'.
	var hosts []string
	for _, u := range r.URLs {
		hosts = append(hosts, u.Hostname())
	}
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		return b.verifyHub(r, trust(), hosts, cs)
	}
	return b.hardenTLS(tc), nil
}

// verifyHub checks the hub's certificate on an outbound link.
func (b *Broker) verifyHub(r config.LeafRemote, trust *pki.Trust, hosts []string, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return b.refuseLink(limitLeafs, b.leafsRefused, "hub", r.Name, &pki.RefusedError{Reason: pki.NoCertificate})
	}
	if err := trust.VerifyServer(cs.PeerCertificates, time.Now()); err != nil {
		return b.refuseLink(limitLeafs, b.leafsRefused, "hub", r.Name, err, "setting", r.Key("url"))
	}
	names := hosts
	if cs.ServerName != "" {
		names = []string{cs.ServerName}
	}
	for _, h := range names {
		if pki.CoversName(cs.PeerCertificates[0], h) {
			return nil
		}
	}
	leaf := cs.PeerCertificates[0]
	err := &pki.RefusedError{Reason: pki.Invalid, Subject: leaf.Subject.String(),
		Detail: fmt.Sprintf("its names %s do not include %s, the host dialled", strings.Join(pki.Names(leaf), ", "), strings.Join(names, " or "))}
	return b.refuseLink(limitLeafs, b.leafsRefused, "hub", r.Name, err, "fix", "list the hub in "+r.Key("url")+" by a name its certificate carries")
}

// leafStreamsOptions lets Choria Streams cross the links. The engine keeps
// JetStream requests ($JS.API, $KV) off a leafnode link unless domains
// tell the two sides' Streams apart:
//
//   - stream.domain on a broker with Streams is its JetStream domain;
//     clients elsewhere reach it as $JS.<domain>.API (nats --js-domain).
//   - A hub with Streams and no domain lets plain requests in from its
//     leafnodes (the engine's default_js_domain of "" for the account).
//   - A leaf without Streams sends its clients' plain requests across:
//     to the hub's domain when stream.domain names it, else plainly.
//
// So the usual case, a hub with Streams and leafs without, needs no
// setting, and go-choria's programs, which know no domains, work on a leaf.
func (b *Broker) leafStreamsOptions(opts *server.Options) {
	n := b.cfg.Network
	d := n.Stream.Domain
	b.leaf.forward = n.Stream.Store == "" && len(b.leaf.remotes) > 0
	switch {
	case opts.JetStream && d != "":
		opts.JetStreamDomain = d
	case opts.JetStream && n.LeafnodePort > 0:
		opts.JsAccDefaultDomain = map[string]string{server.DEFAULT_GLOBAL_ACCOUNT: ""}
	case b.leaf.forward:
		opts.JsAccDefaultDomain = map[string]string{server.DEFAULT_GLOBAL_ACCOUNT: d}
		if p := b.policy.Load(); p != nil && p.Enabled && !p.PrivateReplies {
			// The hub's Streams bring their trade-off here too.
			b.log.Warn("this leaf's clients and nodes use the hub's Choria Streams, with plugin.choria.network.stream.private_replies = false: node and client certificates may subscribe to the shared JetStream inbox <collective>.reply.*.*, so a stolen node certificate can read every client's replies; set it to true to keep replies private (node-side Streams is then off)")
		}
	case d != "" && n.Stream.Store == "":
		b.log.Warn("plugin.choria.network.stream.domain does nothing on this broker: it names this broker's Streams (set stream.store) or, on a leaf without Streams, its hub's (set leafnode_remotes)", "setting", domainKey)
	}
}

// leafDomains: Streams rights are granted in their domain form too, for
// requests that cross a link with a domain.
func (b *Broker) leafDomains() bool {
	return b.cfg.Network.LeafnodePort > 0 || len(b.leaf.remotes) > 0
}

// Engine lines about leafnodes that need saying differently.
const (
	engineSameCluster  = "same cluster name"
	engineInsecureLeaf = "TLS certificate chain and hostname of solicited leafnodes will not be verified"
	engineDefaultJSDom = "`default_js_domain` is a temporary backwards compatibility measure"
	engineLeafCreated  = " - Leafnode connection created for account" // outbound
	engineLeafReadErr  = " - Leafnode connection closed: Read Error"
	engineLeafNew      = " - Leafnode connection created" // inbound too
	engineLeafClosed   = " - Leafnode connection closed: "
)

// engineLeafID is the connection id in an engine line about a leafnode.
var engineLeafID = regexp.MustCompile(` - lid:(\d+) - `)

// explainLeaf rewrites the engine's leafnode lines: a cluster name clash
// says what to set, once a minute; so does a hub that drops the link
// right after TLS, which is how a hub refusing our certificate shows under
// TLS 1.3 (the engine only says "Read Error", every second); two warnings
// about settings we make on purpose (and check otherwise) are dropped.
// False when it handled msg.
func (b *Broker) explainLeaf(msg string) bool {
	switch {
	case strings.Contains(msg, engineLeafReadErr) || strings.Contains(msg, engineLeafCreated):
		return b.explainHubDrop(msg)
	case strings.Contains(msg, engineLeafNew) || strings.Contains(msg, engineLeafClosed):
		return b.inboundLeafLine(msg)
	case strings.Contains(msg, engineSameCluster):
		b.leafsRefused.add(routeOther)
		if b.peerLog.allow("leafnode cluster name") {
			b.log.Error("leafnode link refused: this broker's cluster and the one at the other end have the same name; give each cluster its own plugin.choria.network.gateway_name (a broker without peers is named after its identity)",
				"cluster", b.clusterName(), "setting", clusterNameKey, "engine", msg)
		}
		return false
	case strings.Contains(msg, engineInsecureLeaf):
		return !b.leaf.insecureOK
	case strings.Contains(msg, engineDefaultJSDom):
		return false
	}
	return true
}

// clusterName is the name the engine gives this broker's cluster on a
// leafnode link: gateway_name with routes, else the identity. From the
// settings alone: log filters must not call the engine.
func (b *Broker) clusterName() string {
	if b.expectedPeers > 0 {
		return b.cfg.Network.ClusterName
	}
	return b.cfg.Identity
}

// LeafLink is one connected leafnode link.
type LeafLink struct {
	Outbound bool   // we dialled: the other end is our hub
	Remote   string // outbound: its leafnode_remotes name, "" when unknown
	Name     string // the other broker's server name
	Account  string
	Address  string // its host:port
	Host     string
	Port     int
	RTT      time.Duration

	InMsgs, OutMsgs, InBytes, OutBytes int64
	Subscriptions                      uint32
}

// LeafRemoteStatus is one configured outbound link.
type LeafRemoteStatus struct {
	Name string
	URLs []string // passwords hidden
	Up   bool
}

// LeafStatus is what monitoring shows of leafnodes.
type LeafStatus struct {
	Port    int  // the leafnode listener, 0 when off
	Brokers bool // leafnode_brokers has patterns: a leafnode can be admitted
	Remotes []LeafRemoteStatus
	Links   []LeafLink // outbound first, then by name
}

// Configured: leafnodes are in use on this broker.
func (s LeafStatus) Configured() bool { return s.Port > 0 || len(s.Remotes) > 0 }

// Leafnodes reports the listener, the configured remotes and the links.
func (b *Broker) Leafnodes() LeafStatus {
	st := LeafStatus{Port: b.cfg.Network.LeafnodePort, Brokers: len(b.leaf.rule.Patterns) > 0}
	for _, r := range b.leaf.remotes {
		rs := LeafRemoteStatus{Name: r.Name}
		for _, u := range r.URLs {
			rs.URLs = append(rs.URLs, u.Redacted())
		}
		st.Remotes = append(st.Remotes, rs)
	}
	if b.srv == nil {
		return st
	}
	lz, err := b.srv.Leafz(nil)
	if err != nil {
		return st
	}
	for _, l := range lz.Leafs {
		link := LeafLink{Name: l.Name, Account: l.Account, Host: l.IP, Port: l.Port, Address: net.JoinHostPort(l.IP, strconv.Itoa(l.Port)),
			InMsgs: l.InMsgs, OutMsgs: l.OutMsgs, InBytes: l.InBytes, OutBytes: l.OutBytes, Subscriptions: l.NumSubs}
		link.RTT, _ = time.ParseDuration(l.RTT)
		if v, ok := b.conns.Load(l.ID); !ok || v.(*connInfo).role != leafRole {
			link.Outbound = true
			link.Remote = b.remoteOf(l.ID, l.IP, l.Port)
		}
		st.Links = append(st.Links, link)
	}
	// A remote is up when a link is its; a lone remote owns a lone
	// unmatched outbound link (dialled by an address the engine learnt).
	var unmatched []int
	for i, link := range st.Links {
		if !link.Outbound {
			continue
		}
		if link.Remote == "" {
			unmatched = append(unmatched, i)
		}
		for j := range st.Remotes {
			if st.Remotes[j].Name == link.Remote {
				st.Remotes[j].Up = true
			}
		}
	}
	var down []int
	for j, r := range st.Remotes {
		if !r.Up {
			down = append(down, j)
		}
	}
	if len(unmatched) == 1 && len(down) == 1 {
		st.Links[unmatched[0]].Remote = st.Remotes[down[0]].Name
		st.Remotes[down[0]].Up = true
	}
	slices.SortStableFunc(st.Links, func(a, b LeafLink) int {
		switch {
		case a.Outbound != b.Outbound && a.Outbound:
			return -1
		case a.Outbound != b.Outbound:
			return 1
		}
		return strings.Compare(a.Remote+a.Name, b.Remote+b.Name)
	})
	return st
}

// remoteOf names the configured remote an outbound link was dialled for:
// the one with a url on its port whose host is the name the link's TLS
// was sent to, or its address.
func (b *Broker) remoteOf(cid uint64, ip string, port int) string {
	sni := ""
	if c := b.srv.GetLeafNode(cid); c != nil {
		if cs := c.GetTLSConnectionState(); cs != nil {
			sni = cs.ServerName
		}
	}
	for _, r := range b.leaf.remotes {
		for _, u := range r.URLs {
			if u.Port() != strconv.Itoa(port) {
				continue
			}
			if h := u.Hostname(); (sni != "" && strings.EqualFold(h, sni)) || sameIP(h, ip) {
				return r.Name
			}
		}
	}
	return ""
}

func sameIP(a, b string) bool {
	x, y := net.ParseIP(a), net.ParseIP(b)
	return x != nil && y != nil && x.Equal(y)
}

// LeafsRefused returns how many leafnode links, in or out, were refused
// for reason, one of LeafRefusalReasons.
func (b *Broker) LeafsRefused(reason string) uint64 {
	if c, ok := b.leafsRefused[reason]; ok {
		return c.Load()
	}
	return 0
}

// LeafRefusalReasons are LeafsRefused's reasons.
func LeafRefusalReasons() []string {
	out := make([]string, len(leafRefusalReasons))
	for i, r := range leafRefusalReasons {
		out[i] = string(r)
	}
	return out
}

// disconnectRevokedHubs closes outbound links whose hub certificate t
// revokes; inbound links are closed with the clients (disconnectRevoked).
func (b *Broker) disconnectRevokedHubs(t *pki.Trust, now time.Time) {
	lz, err := b.srv.Leafz(nil)
	if err != nil {
		return
	}
	for _, l := range lz.Leafs {
		if _, inbound := b.conns.Load(l.ID); inbound {
			continue
		}
		c := b.srv.GetLeafNode(l.ID)
		if c == nil {
			continue
		}
		cs := c.GetTLSConnectionState()
		if cs == nil || len(cs.PeerCertificates) == 0 {
			continue
		}
		var re *pki.RefusedError
		if err := t.VerifyServer(cs.PeerCertificates, now); errors.As(err, &re) && re.Reason == pki.Revoked {
			if b.srv.DisconnectClientByID(l.ID) == nil {
				b.crl.revokedOff.Add(1)
				b.log.Warn("leafnode link to the hub closed: its certificate was revoked", "hub", l.Name, "address", net.JoinHostPort(l.IP, strconv.Itoa(l.Port)), "detail", re.Detail)
			}
		}
	}
}

// explainHubDrop handles the engine's lines about an outbound link that a
// hub closes before it is up: one warning a minute per hub with the likely
// cause, and the engine's retries not logged meanwhile.
func (b *Broker) explainHubDrop(msg string) bool {
	addr, _, _ := strings.Cut(msg, " - ")
	name := b.remoteAt(addr)
	if name == "" || b.outboundUp(addr) {
		return true // not a remote of ours, or one that is up
	}
	if strings.Contains(msg, engineLeafCreated) {
		// A retry of a hub already explained within the minute.
		return !b.leaf.dropping(addr)
	}
	b.leaf.drop(addr)
	if b.peerLog.allow("leafnode hub drop " + addr) {
		b.log.Warn("leafnode link closed by the hub right after TLS; it most likely refuses this broker's certificate: a choria-broker hub must match it in plugin.choria.network.leafnode_brokers, and any hub must trust our CA and not have revoked it (see the hub's log); retrying",
			"hub", name, "address", addr, "certificate", b.cert.Load().Leaf.Subject.CommonName)
	}
	return false
}

// remoteAt names the remote with a url at addr (host:port of an engine
// line): by address, or by port when the url names a host.
func (b *Broker) remoteAt(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	for _, r := range b.leaf.remotes {
		for _, u := range r.URLs {
			if u.Port() == port && (net.ParseIP(u.Hostname()) == nil || sameIP(u.Hostname(), host)) {
				return r.Name
			}
		}
	}
	return ""
}

// outboundUp: a link to addr was up at the last look (watchLeafnodes).
// Log filters run under the engine's locks and must not call it.
func (b *Broker) outboundUp(addr string) bool {
	up := b.leaf.up.Load()
	return up != nil && (*up)[addr]
}

// watchLeafnodes looks at the links every period: it logs a remote's link
// coming up and going down, and keeps the addresses of those up for the
// log filters.
func (b *Broker) watchLeafnodes(ctx context.Context, every time.Duration) {
	if len(b.leaf.remotes) == 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	was := map[string]bool{}
	for {
		st := b.Leafnodes()
		up := map[string]bool{}
		links := map[string]LeafLink{}
		for _, l := range st.Links {
			if l.Outbound {
				up[l.Address] = true
				links[l.Remote] = l
			}
		}
		b.leaf.up.Store(&up)
		for _, r := range st.Remotes {
			switch l := links[r.Name]; {
			case r.Up && !was[r.Name]:
				b.log.Info("leafnode link up", "remote", r.Name, "hub", l.Name, "address", l.Address, "rtt", l.RTT)
			case !r.Up && was[r.Name]:
				b.log.Warn("leafnode link down; reconnecting", "remote", r.Name, "urls", strings.Join(r.URLs, ","))
			}
			was[r.Name] = r.Up
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// inboundLeafLine keeps the engine's lines about leafnode connections
// coming and going only for admitted leafnodes: anyone who reaches the
// port could otherwise write two lines a try, and refusals are logged,
// within limits, by admitLeaf; "leafnode admitted" says who got in.
func (b *Broker) inboundLeafLine(msg string) bool {
	addr, _, _ := strings.Cut(msg, " - ")
	if b.remoteAt(addr) != "" {
		return true // one of our links to a hub
	}
	if strings.Contains(msg, engineLeafNew) {
		return false
	}
	m := engineLeafID.FindStringSubmatch(msg)
	if m == nil {
		return true
	}
	id, _ := strconv.ParseUint(m[1], 10, 64)
	v, ok := b.conns.Load(id)
	return ok && v.(*connInfo).role == leafRole
}
